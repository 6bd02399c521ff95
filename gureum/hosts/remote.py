"""The control plane's handle on a joined host's agent: the agent contract over HTTPS.

The agent must present the very certificate the cloud CA issued it at join (verified
against the CA, its address as the name, and pinned by SHA-256): anything else at that
address is a forged agent, refused and logged, never called. Each call carries the
host's own secret, which the agent requires."""

from __future__ import annotations

import hashlib
import http.client
import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from gureum.agent.client import RemoteAgent
from gureum.agent.network import NetworkPlan
from gureum.errors import AgentAuthFailed

log = logging.getLogger("gureum.hosts")


class _PinnedConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, context: ssl.SSLContext, fingerprint: str,
                 timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self.fingerprint = fingerprint

    def connect(self) -> None:
        try:
            super().connect()
        except ssl.SSLCertVerificationError as err:
            log.warning("agent at %s:%s refused: its certificate is not the cloud CA's (%s)",
                        self.host, self.port, err.verify_message)
            raise AgentAuthFailed(f"agent at {self.host}:{self.port} presented a certificate "
                                  f"the cloud CA did not issue: {err.verify_message}") from None
        assert self.sock is not None
        der = self.sock.getpeercert(binary_form=True) or b""  # type: ignore[attr-defined]
        if hashlib.sha256(der).hexdigest() != self.fingerprint:
            self.close()
            log.warning("agent at %s:%s refused: not the certificate issued to it at join",
                        self.host, self.port)
            raise AgentAuthFailed(f"agent at {self.host}:{self.port} is not the host that "
                                  "joined (another certificate than the one issued at join)")


class JoinedHostAgent(RemoteAgent):
    def __init__(self, url: str, fingerprint: str, secret: str, ca_file: Path,
                 plan: NetworkPlan, timeout: float = 120) -> None:
        super().__init__(Path("/nonexistent"), plan, Path("/nonexistent"), timeout)
        split = urlsplit(url)
        assert split.scheme == "https" and split.hostname and split.port
        self.url, self.host, self.port = url, split.hostname, split.port
        self.fingerprint, self.secret = fingerprint, secret
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2

    @property
    def where(self) -> str:
        return self.url

    def _connection(self) -> http.client.HTTPConnection:
        return _PinnedConnection(self.host, self.port, self.context, self.fingerprint,
                                 self.timeout)

    def _token(self) -> str:
        return self.secret
