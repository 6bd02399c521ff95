"""`gureum agent --join URL --token T`: the joining host's side.

It binds its listener, asks the control plane to register it (over HTTPS verified with
the cloud CA, or plain HTTP to a loopback control plane), gets back a certificate the CA
signed for its address and a secret of its own, then serves the agent contract over TLS
(calls must carry that secret) and heartbeats with the same secret."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import socketserver
import ssl
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gureum.agent import contract
from gureum.agent.service import handler_for
from gureum.api.tls import ROUTINE_DISCONNECTS, serve_secured
from gureum.config import Config
from gureum.errors import GureumError
from gureum.hosts.http import HEARTBEAT_PATH, JOIN_PATH

log = logging.getLogger("gureum.agent")
HANDSHAKE_TIMEOUT = 10.0


class JoinFailed(GureumError):
    pass


@dataclass
class Capacity:
    vcpus: int
    memory_mib: int
    disk_gib: int

    @classmethod
    def of(cls, cfg: Config) -> Capacity:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(cfg.host_vcpus, cfg.host_memory_mib,
                   max(1, shutil.disk_usage(cfg.data_dir).total // 2**30))


def _context(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    if not url.startswith("https://"):
        return None
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def post(url: str, path: str, payload: dict[str, Any], ca_file: Path | None,
         timeout: float = 15) -> dict[str, Any]:
    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=_context(url, ca_file)) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            reason = json.loads(err.read()).get("error", err.reason)
        except ValueError:
            reason = err.reason
        raise JoinFailed(f"{url}{path}: {err.code} {reason}") from None
    except (OSError, ValueError) as err:
        raise JoinFailed(f"{url}{path}: {err}") from None


class AgentTlsServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The agent contract over HTTPS; the handshake runs in the connection's thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], agent: contract.AgentContract) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.agent = agent
        self.context: ssl.SSLContext | None = None
        super().__init__(address, handler_for(agent, ""))

    def secure(self, cert: Path, key: Path, secret: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        self.RequestHandlerClass = handler_for(self.agent, secret)
        self.context = context

    def finish_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        if self.context is None:  # not joined yet: nobody is served
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            secured = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as err:
            log.info("agent: TLS handshake with %s failed: %s", client_address, err)
            return
        secured.settimeout(120)
        serve_secured(secured, lambda conn: self.RequestHandlerClass(conn, client_address, self))

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ROUTINE_DISCONNECTS):
            return
        super().handle_error(request, client_address)


@dataclass
class JoinedHost:
    """A host that joined: its listener (serving), its identity and its heartbeat."""

    server: AgentTlsServer
    host_id: str
    secret: str
    url: str
    ca_file: Path | None
    heartbeat_seconds: float
    stopping: threading.Event
    beats: int = 0
    last_error: str = ""

    def heartbeat(self) -> None:
        post(self.url, HEARTBEAT_PATH, {"host_id": self.host_id, "secret": self.secret},
             self.ca_file)
        self.beats += 1

    def _beat_forever(self) -> None:
        while not self.stopping.wait(self.heartbeat_seconds):
            try:
                self.heartbeat()
                self.last_error = ""
            except JoinFailed as err:  # the control plane is down or refuses: keep trying
                if str(err) != self.last_error:
                    log.warning("heartbeat failed: %s", err)
                self.last_error = str(err)

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def join_and_serve(agent: contract.AgentContract, pki_dir: Path, url: str, token: str,
                   name: str, zone: str | None, listen: tuple[str, int], address: str | None,
                   capacity: Capacity, ca_file: Path | None) -> JoinedHost:
    """Bind, join, serve, heartbeat (in threads); the caller stops it with `.stop()`."""
    server = AgentTlsServer(listen, agent)
    try:
        host, port = server.server_address[:2]
        address = address or str(host)
        if address in ("0.0.0.0", "::"):
            raise JoinFailed("--listen on a wildcard address needs --address (how the control "
                             "plane reaches this host)")
        joined = post(url, JOIN_PATH, {
            "token": token, "name": name, "zone": zone, "address": address, "port": port,
            "vcpus": capacity.vcpus, "memory_mib": capacity.memory_mib,
            "disk_gib": capacity.disk_gib}, ca_file)
        pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        cert, key = pki_dir / "agent.pem", pki_dir / "agent.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(joined["private_key_pem"])
        cert.write_text(joined["certificate_pem"])
        (pki_dir / "cloud-ca.pem").write_text(joined["ca_pem"])
        server.secure(cert, key, joined["secret"])
    except BaseException:
        server.server_close()
        raise
    threading.Thread(target=server.serve_forever, name="agent-tls", daemon=True).start()
    host_ = JoinedHost(server, joined["host_id"], joined["secret"], url, ca_file,
                       float(joined.get("heartbeat_seconds") or 5), threading.Event())
    threading.Thread(target=host_._beat_forever, name="heartbeat", daemon=True).start()
    log.info("joined %s as %s (%s), serving the agent on %s:%s", url, name, host_.host_id,
             address, port)
    return host_
