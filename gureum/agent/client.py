"""The control plane's handle on an agent in another process: `AgentContract` over a
socket. Its methods are made from the contract, one per contract method, so the two can
never disagree. An unreachable agent raises AgentUnavailable, which controllers treat as
"try again later", never as a failed operation."""

from __future__ import annotations

import abc
import http.client
import json
import socket
from pathlib import Path
from typing import Any

from gureum.agent import contract, wire
from gureum.agent.network import NetworkPlan
from gureum.errors import AgentAuthFailed, AgentUnavailable

__all__ = ["AgentUnavailable", "RemoteAgent", "read_token", "TOKEN_HEADER"]
TOKEN_HEADER = "X-Gureum-Agent-Token"


def read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("agent", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class RemoteAgent(contract.AgentContract):
    def __init__(self, socket_path: Path, plan: NetworkPlan, token_path: Path,
                 timeout: float = 120) -> None:
        self.socket_path = str(socket_path)
        self.token_path = token_path
        self.timeout = timeout
        self.plan = plan  # derived from the shared config: known even while the agent is down

    def _connection(self) -> http.client.HTTPConnection:
        return _UnixConnection(self.socket_path, self.timeout)

    def _token(self) -> str:
        return read_token(self.token_path)

    @property
    def where(self) -> str:
        return self.socket_path

    def call(self, method: str, *args: Any) -> Any:
        conn = self._connection()
        try:
            body = json.dumps(wire.encode_call(method, args))
            conn.request("POST", f"/{method}", body=body, headers={
                "Content-Type": "application/json", TOKEN_HEADER: self._token()})
            response = conn.getresponse()
            status, reply = response.status, json.loads(response.read() or b"{}")
        except AgentAuthFailed:
            raise
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise AgentUnavailable(f"agent at {self.where} unreachable: {err}") from None
        finally:
            conn.close()
        if status == 401:
            raise AgentAuthFailed(f"agent at {self.where} refused our token")
        if "error" in reply:
            raise wire.decode_error(reply["error"])
        return wire.decode_result(method, reply.get("result"))


def _remote(method: str) -> Any:
    def call(self: RemoteAgent, *args: Any) -> Any:
        return self.call(method, *args)

    call.__name__ = method
    call.__signature__ = contract.METHODS[method]  # type: ignore[attr-defined]
    return call


for _method in contract.METHODS:
    setattr(RemoteAgent, _method, _remote(_method))
abc.update_abstractmethods(RemoteAgent)
