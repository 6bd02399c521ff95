"""The control plane's endpoints for hosts, on the API's listener (HTTPS whenever it is
beyond loopback): POST /_gureum/hosts/join (the join token) and
/_gureum/hosts/heartbeat (the host's own secret). JSON in, JSON out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gureum.hosts import registry

if TYPE_CHECKING:
    from gureum.cloud import Cloud

PREFIX = "/_gureum/hosts/"
JOIN_PATH = PREFIX + "join"
HEARTBEAT_PATH = PREFIX + "heartbeat"


def handle(cloud: Cloud, method: str, path: str, body: bytes,
           peer: str) -> tuple[int, bytes, str]:
    def answer(status: int, payload: dict) -> tuple[int, bytes, str]:
        return status, json.dumps(payload).encode(), "application/json"

    if method != "POST" or path not in (JOIN_PATH, HEARTBEAT_PATH):
        return answer(404, {"error": "no such host endpoint"})
    try:
        request = json.loads(body or b"{}")
        if not isinstance(request, dict):
            raise ValueError("not an object")
    except ValueError:
        return answer(400, {"error": "a JSON object is expected"})
    try:
        if path == JOIN_PATH:
            joined = registry.join(cloud.store, cloud.config, cloud.ca, request, peer)
            return answer(200, joined.as_dict())
        cloud.heartbeats.beat(request, peer)
        return answer(200, {"ok": True})
    except registry.JoinRefused as err:
        return answer(err.status, {"error": str(err)})
