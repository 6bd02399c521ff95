"""`gureum agent`: the host agent as its own process, on a unix socket.

The control plane and the agent then restart independently; instances (detached runc
containers) keep running while either is down. Exactly the methods of the agent
contract can be called, each with a token that only root can read (the data
directory's `agent.token`); a remote host would put the same calls behind TLS.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from gureum import interpreter
from gureum.agent import contract, wire
from gureum.agent.agent import HostAgent
from gureum.agent.client import TOKEN_HEADER
from gureum.config import Config
from gureum.errors import AgentProtocolError
from gureum.stop_signals import on_stop_signal, wait_until_set

log = logging.getLogger("gureum.agent")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def ensure_token(path: Path) -> str:
    """The shared secret of agent and control plane, made once, readable by root only."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def handler_for(agent: contract.AgentContract, token: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802
            method = self.path.strip("/")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            given = self.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                log.warning("agent call %s refused: bad token", method[:40])
                self._reply(401, {"error": {"type": "AgentAuthFailed", "fields": {
                    "message": "bad agent token"}}})
                return
            try:
                if method not in contract.METHODS:
                    raise AgentProtocolError(f"no agent method {method[:40]!r}")
                kwargs = wire.decode_call(method, json.loads(body or b"{}"))
                reply = {"result": wire.encode(getattr(agent, method)(**kwargs))}
            except Exception as err:  # the caller gets it as the same error type
                log.exception("agent call %s failed", method[:40])
                reply = {"error": wire.encode_error(err)}
            self._reply(200, reply)

    return Handler


def serve(config: Config, socket_path: Path) -> int:
    agent = HostAgent(config)
    token = ensure_token(config.agent_token_path)
    # Metadata and DNS answer again before the socket opens: whoever sees the socket
    # (the control plane, a test) finds them served.
    agent.resume()
    socket_path.unlink(missing_ok=True)
    server = _Server(str(socket_path), handler_for(agent, token))
    os.chmod(socket_path, 0o600)
    done = on_stop_signal()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    interpreter.settle()
    print(f"AGENT READY {socket_path}", flush=True)
    wait_until_set(done)
    server.shutdown()
    agent.close()
    socket_path.unlink(missing_ok=True)
    return 0
