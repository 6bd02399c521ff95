"""The instance metadata service (IMDS) data plane at 169.254.169.254.

169.254.169.254 is an address of each VPC's router; this server listens there on a socket
made inside the router netns, so the socket names the VPC and the source address (kept
honest by the anti-spoof rule on the VPC bridge) names the instance. What an instance
sees is decided by the control plane and pushed as data (`contract.InstanceMetadata`);
this module speaks the protocol (IMDSv2 session tokens, v1 refusal, hop limits, disabled
endpoints) and walks request paths through that data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gureum.agent.contract import InstanceMetadata

log = logging.getLogger("gureum.imds")
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600


@dataclass(frozen=True)
class MetadataAnswer:
    status: int
    body: bytes
    content_type: str = "text/plain"


NOT_FOUND = MetadataAnswer(404, b"Not Found")
VERSIONS = ("latest", "2021-03-23", "2007-01-19", "1.0")


def resolve(inst: InstanceMetadata, path: str) -> MetadataAnswer:
    """What GET `path` answers, in EC2's layout."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return MetadataAnswer(200, "\n".join(reversed(VERSIONS)).encode())
    if parts[0] not in VERSIONS:
        return NOT_FOUND
    rest = parts[1:]
    if not rest:
        return MetadataAnswer(200, b"dynamic\nmeta-data\nuser-data")
    if rest == ["user-data"]:
        if not inst.user_data:
            return NOT_FOUND
        return MetadataAnswer(200, inst.user_data, "application/octet-stream")
    if rest[0] == "dynamic":
        return _dynamic(inst, rest[1:])
    if rest[0] != "meta-data":
        return NOT_FOUND
    if rest[1:] == ["public-keys"] and "public-keys" in inst.tree:  # EC2 lists INDEX=NAME here
        return MetadataAnswer(200, "\n".join(
            f"{k}={inst.key_name}" for k in inst.tree["public-keys"]).encode())
    node: Any = inst.tree
    for part in rest[1:]:
        if not isinstance(node, dict) or part not in node:
            return NOT_FOUND
        node = node[part]
    if isinstance(node, dict):
        return MetadataAnswer(200, "\n".join(
            k + "/" if isinstance(v, dict) else k for k, v in node.items()).encode())
    return MetadataAnswer(200, str(node).encode())


def _dynamic(inst: InstanceMetadata, rest: list[str]) -> MetadataAnswer:
    if not rest:
        return MetadataAnswer(200, b"instance-identity/")
    if rest[0] != "instance-identity":
        return NOT_FOUND
    if len(rest) == 1:
        return MetadataAnswer(200, b"document\npkcs7\nrsa2048\nsignature")
    identity = inst.identity
    if rest[1] == "document":
        return MetadataAnswer(200, identity.document.encode(), "application/json")
    if rest[1] == "signature":
        return MetadataAnswer(200, identity.signature.encode())
    if rest[1] in ("pkcs7", "rsa2048"):
        return MetadataAnswer(200, identity.pkcs7.encode())
    return NOT_FOUND


def token_secret(path: Path, adopt: Path | None = None) -> bytes:
    """The host's IMDSv2 token key, made once (tokens never leave the metadata service,
    so no one else needs it). `adopt`: a key an older version kept elsewhere, taken over
    so tokens handed out before an upgrade stay valid."""
    if not path.exists():
        secret = adopt.read_bytes() if adopt is not None and adopt.exists() else os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
    return path.read_bytes()


class Tokens:
    """Stateless IMDSv2 tokens: HMAC(instance, expiry). A token is bound to the instance
    that asked for it, so it is useless from any other instance."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def issue(self, instance_id: str, ttl: int) -> str:
        expiry = str(int(time.time()) + ttl)
        mac = hmac.new(self.secret, f"{instance_id}:{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(f"{expiry}:".encode() + mac[:24]).decode()

    def valid(self, instance_id: str, token: str) -> bool:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
            expiry, mac = raw.split(b":", 1)
            if int(expiry) < time.time():
                return False
        except (ValueError, TypeError):
            return False
        want = hmac.new(self.secret, f"{instance_id}:{expiry.decode()}".encode(),
                        hashlib.sha256).digest()[:24]
        return hmac.compare_digest(want, mac)


class _Handler(BaseHTTPRequestHandler):
    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without NODELAY, Nagle and the
        # client's delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    timeout = 10
    lookup: Callable[[str], InstanceMetadata | None]
    tokens: Tokens

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str = "text/plain",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _instance(self) -> InstanceMetadata | None:
        inst = self.lookup(self.client_address[0])
        if inst is None:
            self._send(404, b"Not Found")
            return None
        if not inst.endpoint_enabled:
            self._send(403, b"Forbidden")  # HttpEndpoint=disabled
            return None
        return inst

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        inst = self._instance()
        if inst is None:
            return
        if self.path != "/latest/api/token":
            self._send(403, b"Forbidden")
            return
        if self.headers.get("X-Forwarded-For"):
            self._send(403, b"Forbidden")  # as EC2: no tokens through proxies
            return
        raw = self.headers.get(TTL_HEADER)
        try:
            ttl = int(raw) if raw is not None else -1
        except ValueError:
            ttl = -1
        if not 1 <= ttl <= MAX_TTL:
            self._send(400, b"Bad Request")
            return
        # The hop limit: the answer's packets carry this TTL, so a token cannot travel
        # further than the instance wants (containers behind it, for example).
        self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, inst.hop_limit)
        self._send(200, self.tokens.issue(inst.instance_id, ttl).encode(),
                   extra={TTL_HEADER: str(ttl)})

    def do_GET(self) -> None:  # noqa: N802
        inst = self._instance()
        if inst is None:
            return
        token = self.headers.get(TOKEN_HEADER)
        if token is not None:
            if not self.tokens.valid(inst.instance_id, token):
                self._send(401, b"Unauthorized")
                return
        elif inst.http_tokens == "required":
            self._send(401, b"Unauthorized")
            return
        answer = resolve(inst, self.path.split("?", 1)[0])
        self._send(answer.status, answer.body, answer.content_type)

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        self._send(405, b"Method Not Allowed", extra={"Allow": "OPTIONS, GET, HEAD, PUT"})

    do_DELETE = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MetadataServer:
    """Serves on a socket already bound (inside a VPC's router netns)."""

    def __init__(self, sock: socket.socket, lookup: Callable[[str], InstanceMetadata | None],
                 secret: bytes) -> None:
        handler = type("ImdsHandler", (_Handler,), {"lookup": staticmethod(lookup),
                                                     "tokens": Tokens(secret)})
        self.httpd = _Server(sock.getsockname(), handler, bind_and_activate=False)
        self.httpd.socket.close()
        self.httpd.socket = sock
        sock.listen(64)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="imds", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
