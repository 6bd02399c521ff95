"""Which agent runs a host: the control plane's own for the control host (and for
instances placed before hosts existed, whose `host_id` is empty), a `JoinedHostAgent`
over TLS for every joined host."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent.contract import AgentContract
from gureum.agent.network import plan_for
from gureum.errors import AgentUnavailable
from gureum.hosts.remote import JoinedHostAgent
from gureum.store.host_models import Host

if TYPE_CHECKING:
    from gureum.cloud import Cloud

ROWS_FOR_SECONDS = 5.0  # a re-joined host's new certificate is picked up this soon


class HostAgents:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[bool, str | None, str | None, str | None]] = {}
        self._states: dict[str, str] = {}
        self._read_at = 0.0
        self._remote: dict[tuple[str, str, str], JoinedHostAgent] = {}
        # Agents living in this process for hosts in the table (bench/hosts_scale.py's
        # simulated hosts): used instead of dialling their URL.
        self.attached: dict[str, AgentContract] = {}

    def _refresh(self, wanted: str | None = None) -> None:
        if (wanted is not None and wanted not in self._rows) or \
                time.monotonic() - self._read_at > ROWS_FOR_SECONDS:
            with self.cloud.store.read() as s:
                hosts = list(s.scalars(select(Host)))
            self._rows = {h.host_id: (h.is_control, h.agent_url, h.cert_fingerprint,
                                      h.agent_secret) for h in hosts}
            self._states = {h.host_id: h.state for h in hosts}
            self._read_at = time.monotonic()

    def _row(self, host_id: str) -> tuple[bool, str | None, str | None, str | None] | None:
        with self._lock:
            self._refresh(host_id)
            return self._rows.get(host_id)

    def key(self, host_id: str | None) -> str:
        """The host an instance row names, as one key: rows placed before hosts existed
        (no host id) are the control host's."""
        return host_id or self.cloud.control_host_id or ""

    def joined(self) -> list[str]:
        """Joined hosts that are not lost: where routers, sweeps and pushes also go."""
        with self._lock:
            self._refresh()
            return sorted(h for h, row in self._rows.items()
                          if not row[0] and row[1] and self._states.get(h) != "lost")

    def lost(self, host_id: str | None) -> bool:
        """The instance's host stopped heartbeating: its agent is not called (the call
        would only wait for a timeout) until it is back."""
        if not host_id:
            return False
        with self._lock:
            self._refresh(host_id)
            return self._states.get(host_id) == "lost"

    def live(self) -> list[tuple[str, AgentContract]]:
        """(host key, agent) of the control host, then of every joined host not lost."""
        out: list[tuple[str, AgentContract]] = []
        if self.cloud.agent is not None:
            out.append((self.key(None), self.cloud.agent))
        out += [(h, self.get(h)) for h in self.joined()]
        return out

    def get(self, host_id: str | None) -> AgentContract:
        local = self.cloud.agent
        if host_id is None:
            assert local is not None
            return local
        attached = self.attached.get(host_id)
        if attached is not None:
            return attached
        row = self._row(host_id)
        if row is None:
            raise AgentUnavailable(f"host {host_id} is not registered")
        is_control, url, fingerprint, secret = row
        if is_control or not (url and fingerprint and secret):
            assert local is not None
            return local
        key = (url, fingerprint, secret)
        with self._lock:
            agent = self._remote.get(key)
            if agent is None:
                agent = JoinedHostAgent(url, fingerprint, secret, self.cloud.ca.cert_path,
                                        plan_for(self.cloud.config))
                self._remote[key] = agent
            return agent

    def forget(self) -> None:
        """Read the hosts again on the next call (a host joined, re-joined or left)."""
        with self._lock:
            self._read_at = 0.0
