"""The control plane's side of hosts: the join token, registering a host that joins,
heartbeats, the operator's list/drain/undrain/remove, and the zones hosts declare.

The join token is stored hashed (SHA-256) in the database, so every control plane on a
shared PostgreSQL checks it; the clear token is kept only in the control host's data
directory (0600), from which `gureum host token` prints it again."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from gureum.config import Config
from gureum.errors import OperatorError
from gureum.pki import CloudCA
from gureum.store import models
from gureum.store.db import Store
from gureum.store.host_models import Host, JoinToken

log = logging.getLogger("gureum.hosts")
HEARTBEAT_SECONDS = float(os.environ.get("GUREUM_HEARTBEAT_SECONDS", "3"))
# A host silent this long (three beats missed) is `lost`: no new placements on it, its
# instances report an impaired system status and Auto Scaling replaces them.
LOST_AFTER_SECONDS = float(os.environ.get("GUREUM_HOST_LOST_SECONDS", "10"))
HOLDING_STATES = ("pending", "running", "stopping", "shutting-down", "stopped")


class JoinRefused(Exception):
    """A join or heartbeat the control plane refuses (bad token or secret, bad fields)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_path(cfg: Config):  # noqa: ANN201
    return cfg.data_dir / "join.token"


def join_token(store: Store, cfg: Config, rotate: bool = False) -> str:
    """The cloud's join token (made on first use; `rotate` replaces it: hosts already
    joined keep working, they hold their own secrets)."""
    path = token_path(cfg)
    token = None if rotate else _read(path)
    with store.write() as s:
        if token is not None and s.get(JoinToken, _hash(token)) is not None:
            return token
        token = "gureum-join-" + secrets.token_urlsafe(24)
        s.execute(delete(JoinToken))
        s.add(JoinToken(token_hash=_hash(token)))
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    tmp.replace(path)
    return token


def _read(path) -> str | None:  # noqa: ANN001
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def default_zone(cfg: Config) -> str:
    return cfg.region + "a"


def zone_id(region: str, zone_name: str) -> str:
    """AWS's zone id: the region and the zone's ordinal (gureum-1a -> gureum-1-az1)."""
    return f"{region}-az{ord(zone_name[-1]) - ord('a') + 1}"


def zone_valid(cfg: Config, zone: str) -> bool:
    """A zone of this region, named as AWS names them: the region and one letter."""
    return re.fullmatch(re.escape(cfg.region) + "[a-z]", zone) is not None


def register_control_host(store: Store, cfg: Config) -> Host:
    """The host the control plane runs on is the first host: its zone the default one,
    its agent the control plane's own (no URL, no secret)."""
    name = os.environ.get("GUREUM_HOST_NAME") or socket.gethostname()
    disk_gib = shutil.disk_usage(cfg.data_dir).total // 2**30
    with store.write() as s:
        host = s.scalar(select(Host).where(Host.is_control.is_(True), Host.name == name))
        if host is None:
            host = Host(host_id=new_host_id(), name=name, zone=default_zone(cfg),
                        is_control=True, address=cfg.host, vcpus=cfg.host_vcpus,
                        memory_mib=cfg.host_memory_mib, disk_gib=disk_gib)
            s.add(host)
        host.vcpus, host.memory_mib, host.disk_gib = cfg.host_vcpus, cfg.host_memory_mib, disk_gib
        host.last_heartbeat = models.utcnow()
        if host.state == "lost":
            host.state = "active"
        s.flush()
        s.expunge(host)
        return host


def new_host_id() -> str:
    return "h-" + secrets.token_hex(8) + secrets.token_hex(1)[:1]


def _int(request: dict[str, Any], key: str) -> int:
    value = request.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise JoinRefused(400, f"{key} must be a positive integer")
    return value


@dataclass(frozen=True)
class Joined:
    host_id: str
    certificate_pem: str
    private_key_pem: str
    ca_pem: str
    secret: str
    heartbeat_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def join(store: Store, cfg: Config, ca: CloudCA, request: dict[str, Any], peer: str) -> Joined:
    """Register (or re-register) the host a valid join token came with: a certificate the
    cloud CA signs for its address and a secret of its own, which the control plane then
    requires of it both ways. A bad token is refused and logged."""
    given = request.get("token")
    name = str(request.get("name") or "")[:64]
    with store.read() as s:
        known = {t for t in s.scalars(select(JoinToken.token_hash))}
    if not isinstance(given, str) or not any(hmac.compare_digest(_hash(given), k) for k in known):
        log.warning("host join refused: wrong join token from %s (name %r)", peer, name)
        raise JoinRefused(403, "join refused: wrong join token")
    zone = request.get("zone") or default_zone(cfg)
    address = request.get("address")
    port = request.get("port")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}", name):
        raise JoinRefused(400, "name: letters, digits, dots and dashes, up to 64")
    if not isinstance(zone, str) or not zone_valid(cfg, zone):
        raise JoinRefused(400, f"zone {zone!r} is not a zone of region {cfg.region} "
                               f"(e.g. {cfg.region}a, {cfg.region}b)")
    if not isinstance(address, str) or not address or not isinstance(port, int):
        raise JoinRefused(400, "address and port are required")
    vcpus, memory, disk = (_int(request, k) for k in ("vcpus", "memory_mib", "disk_gib"))
    issued = ca.issue([address])
    secret = secrets.token_hex(32)
    host_url = f"https://{'[' + address + ']' if ':' in address else address}:{port}"
    with store.write() as s:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is not None and host.is_control:
            raise JoinRefused(409, f"{name} is the control host's name")
        if host is None:
            host = Host(host_id=new_host_id(), name=name)
            s.add(host)
        host.address, host.zone, host.agent_url = address, zone, host_url
        host.vcpus, host.memory_mib, host.disk_gib = vcpus, memory, disk
        host.cert_fingerprint = pem_fingerprint(issued.certificate_pem)
        host.agent_secret = secret
        host.last_heartbeat = models.utcnow()
        if host.state == "lost":
            host.state = "active"
        s.flush()
        host_id = host.host_id
    log.info("host %s (%s) joined from %s: %s, zone %s", name, host_id, peer, host_url, zone)
    return Joined(host_id, issued.certificate_pem, issued.private_key_pem, issued.chain_pem,
                  secret, HEARTBEAT_SECONDS)


def pem_fingerprint(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def heartbeat(store: Store, request: dict[str, Any], peer: str) -> None:
    """A joined host is alive (its secret proves it); a lost one is active again. One
    write per beat: `Heartbeats` batches them."""
    beats = Heartbeats(store)
    beats.beat(request, peer)
    beats.flush()


class Heartbeats:
    """Heartbeats checked at once (a read), written in one transaction a second: 1,000
    hosts beating every 5 s would otherwise be 200 write transactions a second, each
    queuing on the one writer lock with the API's writes (bench/hosts_scale.py). A lost
    host coming back is written at once."""

    def __init__(self, store: Store, flush_seconds: float = 1.0) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._pending: dict[str, dt.datetime] = {}
        self._hosts: dict[str, tuple[str | None, str]] = {}
        self._read_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _known(self, host_id: str) -> tuple[str | None, str]:
        """(secret, state) of a host, from a copy of all hosts' read at most every 5 s
        (and at once for a host not in it: one that just joined)."""
        with self._lock:
            stale = time.monotonic() - self._read_at > 5 or host_id not in self._hosts
        if stale:
            with self.store.read() as s:
                hosts = {h: (secret, state) for h, secret, state in s.execute(
                    select(Host.host_id, Host.agent_secret, Host.state))}
            with self._lock:
                self._hosts, self._read_at = hosts, time.monotonic()
        with self._lock:
            return self._hosts.get(host_id, (None, ""))

    def beat(self, request: dict[str, Any], peer: str) -> None:
        host_id, given = request.get("host_id"), request.get("secret")
        secret, state = self._known(host_id) if isinstance(host_id, str) else (None, "")
        if secret is None or not isinstance(given, str) or \
                not hmac.compare_digest(given, secret):
            log.warning("heartbeat refused: unknown host or wrong secret from %s (%r)",
                        peer, str(host_id)[:40])
            raise JoinRefused(403, "heartbeat refused")
        assert isinstance(host_id, str)
        with self._lock:
            self._pending[host_id] = models.utcnow()
        if state == "lost":
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        with self.store.write() as s:
            s.execute(update(Host), [{"host_id": h, "last_heartbeat": at}
                                     for h, at in batch.items()])
            for host in s.scalars(select(Host).where(Host.host_id.in_(list(batch)),
                                                     Host.state == "lost")):
                host.state = "active"
                log.info("host %s is back", host.name)
        with self._lock:
            self._read_at = 0.0  # states may have moved

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # the database away: the next flush carries them
                log.exception("writing heartbeats failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()


def mark_lost(store: Store, now: dt.datetime | None = None) -> list[str]:
    """Hosts silent for LOST_AFTER_SECONDS become `lost` (the control host never: its
    agent is the control plane's own). Returns their names."""
    now = now or models.utcnow()
    cutoff = now - dt.timedelta(seconds=LOST_AFTER_SECONDS)
    with store.write() as s:
        silent = list(s.scalars(select(Host).where(
            Host.is_control.is_(False), Host.state != "lost", Host.last_heartbeat < cutoff)))
        for host in silent:
            host.state = "lost"
            log.warning("host %s lost: no heartbeat since %s", host.name, host.last_heartbeat)
        control = s.scalars(select(Host).where(Host.is_control.is_(True)))
        for host in control:
            host.last_heartbeat = now
        return [h.name for h in silent]


def lost_since(s: Any) -> dict[str, dt.datetime]:
    """Lost hosts and their last heartbeat (when their instances became impaired)."""
    return {h: at for h, at in s.execute(select(Host.host_id, Host.last_heartbeat).where(
        Host.state == "lost"))}


@dataclass(frozen=True)
class HostView:
    host_id: str
    name: str
    address: str
    zone: str
    state: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    instances: int
    used_vcpus: float
    used_memory_mib: int
    control: bool
    last_heartbeat: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def host_views(store: Store) -> list[HostView]:
    """Every host with its capacity and what its live instances take of it (an instance
    without a host is the control host's, as before hosts existed)."""
    from gureum.services.ec2.instance_types import CATALOGUE

    with store.read() as s:
        hosts = list(s.scalars(select(Host).order_by(Host.is_control.desc(), Host.name)))
        control = next((h.host_id for h in hosts if h.is_control), None)
        rows = s.execute(select(models.Instance.host_id, models.Instance.instance_type,
                                models.Instance.state).where(
            models.Instance.state.in_(HOLDING_STATES))).all()
    count: dict[str, int] = {}
    cpu: dict[str, float] = {}
    mem: dict[str, int] = {}
    for host_id, itype, state in rows:
        key = host_id or control or ""
        count[key] = count.get(key, 0) + 1
        if state != "stopped" and itype in CATALOGUE:
            cpu[key] = cpu.get(key, 0) + CATALOGUE[itype].vcpus
            mem[key] = mem.get(key, 0) + CATALOGUE[itype].memory_mib
    return [HostView(h.host_id, h.name, h.address, h.zone, h.state, h.vcpus, h.memory_mib,
                     h.disk_gib, count.get(h.host_id, 0), cpu.get(h.host_id, 0),
                     mem.get(h.host_id, 0), h.is_control,
                     h.last_heartbeat.isoformat(timespec="seconds") if h.last_heartbeat else "")
            for h in hosts]


def find(s: Any, name_or_id: str) -> Host:
    host = s.get(Host, name_or_id) or s.scalar(select(Host).where(Host.name == name_or_id))
    if host is None:
        raise OperatorError(f"no host {name_or_id!r} (see `gureum host list`)")
    return host


def set_state(store: Store, name_or_id: str, state: str) -> str:
    """drain (no new placements; its instances stay) or undrain (active again)."""
    with store.write() as s:
        host = find(s, name_or_id)
        host.state = state
        return host.name


def remove(store: Store, name_or_id: str) -> str:
    """Forget a host. Refused while instances (running or stopped) live on it: drain it,
    move or terminate them first. The control host cannot be removed."""
    with store.write() as s:
        host = find(s, name_or_id)
        if host.is_control:
            raise OperatorError(f"{host.name} is the control host: it cannot be removed")
        holding = s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.host_id == host.host_id,
            models.Instance.state.in_(HOLDING_STATES))) or 0
        if holding:
            raise OperatorError(f"{host.name} still holds {holding} instance(s): terminate "
                                "them first (drain stops new placements)")
        s.delete(host)
        return host.name


def zones(store: Store, cfg: Config) -> list[str]:
    """The zones hosts declare, sorted (the default zone always: subnets made before any
    host joined live there)."""
    with store.read() as s:
        found = set(s.scalars(select(Host.zone).distinct()))
    return sorted(found | {default_zone(cfg)})
