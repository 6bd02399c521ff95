"""`gureum agent`: the host agent as its own process, on a unix socket.

The control plane and the agent then restart independently; instances (detached runc
containers) keep running while either is down. Only the HostAgent methods listed here
can be called.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from gureum.agent import wire
from gureum.agent.agent import HostAgent
from gureum.config import Config
from gureum.errors import GureumError

log = logging.getLogger("gureum.agent")
METHODS = {
    "launch", "stop", "reboot", "destroy", "status", "ssh_ready", "alive", "console_tail",
    "apply_firewall", "sync_public_ips", "ensure_vpc", "remove_vpc", "vpc_routers",
    "ensure_host_network", "trim_console", "remove_host_network",
    "remove_cgroup_parents", "host_objects",
}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(config: Config, socket_path: Path) -> int:
    agent = HostAgent(config)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

        def do_POST(self) -> None:  # noqa: N802
            method = self.path.strip("/")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if method not in METHODS:
                    raise GureumError(f"no agent method {method!r}")
                args = wire.decode(json.loads(body or b"{}").get("args", []))
                reply = {"result": wire.encode(getattr(agent, method)(*args))}
            except Exception as err:  # the caller gets it as an error of its own
                log.exception("agent call %s failed", method)
                reply = {"error": {"type": type(err).__name__, "message": str(err)}}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    socket_path.unlink(missing_ok=True)
    server = _Server(str(socket_path), Handler)
    os.chmod(socket_path, 0o600)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"AGENT READY {socket_path}", flush=True)
    done.wait()
    server.shutdown()
    socket_path.unlink(missing_ok=True)
    return 0
