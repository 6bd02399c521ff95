"""The control plane's handle on an agent in another process (same interface as
HostAgent). An unreachable agent raises AgentUnavailable, which controllers treat as
"try again later", never as a failed operation."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from gureum.agent import wire
from gureum.agent.network import NetworkPlan
from gureum.errors import HostError


class AgentUnavailable(HostError):
    """The agent process cannot be reached (down, restarting)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("agent", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class RemoteAgent:
    def __init__(self, socket_path: Path, plan: NetworkPlan, timeout: float = 120) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.plan = plan  # derived from the shared config: known even while the agent is down

    def _call(self, method: str, *args: Any) -> Any:
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            body = json.dumps({"args": wire.encode(list(args))})
            conn.request("POST", f"/{method}", body=body, headers={"Content-Type": "application/json"})
            reply = json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException) as err:
            raise AgentUnavailable(f"agent at {self.socket_path} unreachable: {err}") from None
        finally:
            conn.close()
        if "error" in reply:
            raise HostError(f"{reply['error']['type']}: {reply['error']['message']}")
        return wire.decode(reply["result"])

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args: self._call(method, *args)
