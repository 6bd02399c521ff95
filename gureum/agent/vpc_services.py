"""The DNS and metadata listeners of each VPC, bound inside its router netns, run by the
host agent.

The socket says which VPC is asking and the source address which instance. Answers come
only from the latest `VpcServices` the control plane pushed (`serve`), kept in memory and
in `<data>/vpc-services/<vpc id>.json`, so an agent that restarts answers at once and no
request ever waits for the control plane.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from dnslib import PTR, QTYPE, RR, A

from gureum.agent import idmap, wire
from gureum.agent.contract import InstanceMetadata, VpcServices
from gureum.agent.dns import DnsServer, host_resolvers
from gureum.agent.metadata import MetadataServer
from gureum.agent.network import DNS_ADDRESS, IMDS_ADDRESS, NetworkPlan
from gureum.errors import HostError

log = logging.getLogger("gureum.vpc_services")
TTL = 60
RDATA = {"A": A, "PTR": PTR}


def dns_answer(services: VpcServices | None, name: str, qtype: str,
               client: str) -> list[RR] | None:
    """Answers for `name` asked by `client`; None when it is not ours to answer (the
    caller is no instance of the VPC, DNS is off, or the name is outside our zones)."""
    if services is None or not services.dns_support or client not in services.instances:
        return None
    if not any(name == zone or name.endswith("." + zone) for zone in services.zones):
        return None
    found = [(kind, value) for owner, kind, value in services.records if owner == name]
    wanted = [(kind, value) for kind, value in found if qtype in (kind, "ANY")]
    return [RR(name, getattr(QTYPE, kind), rdata=RDATA[kind](value), ttl=TTL)
            for kind, value in wanted]


@dataclass
class _Listeners:
    inode: int  # of the router netns they were bound in: a remade router needs new ones
    servers: list[DnsServer | MetadataServer]


def _stop_all(servers: list[DnsServer | MetadataServer]) -> None:
    """Stop servers side by side: an HTTP server takes up to its 0.5 s poll to stop."""
    threads = [threading.Thread(target=server.stop) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)


def _bound(kind: int, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


_SPLICE = "\0instances\0"


class VpcListeners:
    def __init__(self, plan: NetworkPlan, directory: Path, token_secret: bytes,
                 outbound: bool) -> None:
        self.plan = plan
        self.directory = directory
        self.token_secret = token_secret
        self.outbound = outbound
        self.served: dict[str, VpcServices] = self._load()
        self.listeners: dict[str, _Listeners] = {}
        self.lock = threading.RLock()
        # VPC -> id(an instance's metadata) -> (that value, its JSON), for `_json`
        self._encoded_instances: dict[str, dict[int, tuple[InstanceMetadata, str]]] = {}

    # -- what is served --------------------------------------------------------------
    def _path(self, vpc_id: str) -> Path:
        return self.directory / f"{vpc_id}.json"

    def _load(self) -> dict[str, VpcServices]:
        served = {}
        for path in sorted(self.directory.glob("*.json")) if self.directory.exists() else []:
            try:
                services = wire.decode(json.loads(path.read_text()), VpcServices)
            except (OSError, ValueError, TypeError, KeyError):  # a torn or older file
                log.warning("ignoring unreadable %s: the next push replaces it", path)
                continue
            served[services.vpc.vpc_id] = services
        return served

    def serve(self, services: VpcServices) -> None:
        """Answer from `services` from now on; bound at once when the router exists."""
        vpc_id = services.vpc.vpc_id
        with self.lock:
            if self.served.get(vpc_id) != services:
                self._keep(services)
            self.bind(vpc_id)

    def serve_instance(self, vpc_id: str, private_ip: str, metadata: InstanceMetadata) -> None:
        """One instance's answers added to a served VPC's (agent contract)."""
        with self.lock:
            services = self.served.get(vpc_id)
            if services is None:
                raise HostError(f"VPC {vpc_id} is not served on this host")
            if services.instances.get(private_ip) != metadata:
                self._keep(dataclasses.replace(
                    services, instances={**services.instances, private_ip: metadata}))

    def _keep(self, services: VpcServices) -> None:
        """Save, then serve `services` (under the lock)."""
        vpc_id = services.vpc.vpc_id
        self.directory.mkdir(mode=0o700, exist_ok=True)
        tmp = self._path(vpc_id).with_suffix(".tmp")
        tmp.write_text(self._json(services))
        tmp.replace(self._path(vpc_id))  # a crash leaves the old file or the new
        self.served[vpc_id] = services  # readers take the new value whole

    def _json(self, services: VpcServices) -> str:
        """`services` as the JSON text saved for the agent's restarts. Each instance's part
        is encoded once per value: a push that changed one instance of 200 (the usual
        one) encodes one, and joins the others' text."""
        vpc_id = services.vpc.vpc_id
        rest = wire.encode(dataclasses.replace(services, instances={}))
        rest["instances"] = _SPLICE  # a string no field holds: replaced by the text below
        known = self._encoded_instances.get(vpc_id, {})
        kept: dict[int, tuple[InstanceMetadata, str]] = {}
        parts = []
        for address, metadata in services.instances.items():
            hit = known.get(id(metadata))
            if hit is None or hit[0] is not metadata:
                hit = (metadata, json.dumps(wire.encode(metadata)))
            kept[id(metadata)] = hit
            parts.append(f"{json.dumps(address)}: {hit[1]}")
        self._encoded_instances[vpc_id] = kept
        return json.dumps(rest).replace(json.dumps(_SPLICE), f"{{{', '.join(parts)}}}", 1)

    def resume(self) -> None:
        """At the agent's start: listen for every VPC served before whose router exists."""
        for vpc_id in list(self.served):
            try:
                self.bind(vpc_id)
            except OSError as err:
                log.warning("listeners of %s wait for its next push: %s", vpc_id, err)

    # -- sockets -----------------------------------------------------------------------
    def bind(self, vpc_id: str) -> None:
        """Listeners of a served VPC bound in its router (again, if the router was remade);
        nothing while it has no router or nothing to serve."""
        path = self.plan.router_path(vpc_id)
        with self.lock:
            services = self.served.get(vpc_id)
            try:
                inode = os.stat(path).st_ino
            except FileNotFoundError:
                return
            current = self.listeners.get(vpc_id)
            if services is None or (current is not None and current.inode == inode):
                return
            if current is not None:  # the router was remade: its old sockets are orphans
                _stop_all(current.servers)
                del self.listeners[vpc_id]
            self.listeners[vpc_id] = _Listeners(inode, self._start(vpc_id, path,
                                                                   services.vpc.resolver))

    def _start(self, vpc_id: str, path: str, resolver: str) -> list[DnsServer | MetadataServer]:
        served = self.served  # looked up per request: a push takes effect at once

        def metadata(ip: str) -> InstanceMetadata | None:
            services = served.get(vpc_id)
            return services.instances.get(ip) if services is not None else None

        def may_forward(client: str) -> bool:
            services = served.get(vpc_id)
            return services is not None and services.dns_support and \
                client in services.forward_for

        servers: list[DnsServer | MetadataServer] = []
        try:
            imds = idmap.in_netns(path, lambda: _bound(socket.SOCK_STREAM, (IMDS_ADDRESS, 80)))
            servers.append(MetadataServer(imds, metadata, self.token_secret))
            for address in (resolver, DNS_ADDRESS):
                sock = idmap.in_netns(path, lambda a=address: _bound(socket.SOCK_DGRAM, (a, 53)))
                servers.append(DnsServer(
                    sock, lambda name, qtype, client: dns_answer(
                        served.get(vpc_id), name, qtype, client),
                    may_forward=may_forward,
                    upstreams=host_resolvers() if self.outbound else ()))
        except Exception:
            for server in servers:
                server.stop()
            raise
        for server in servers:
            server.start()
        return servers

    def forget(self, vpc_id: str) -> None:
        """Stop serving the VPC and drop what it was given (its router is going)."""
        with self.lock:
            current = self.listeners.pop(vpc_id, None)
            self.served.pop(vpc_id, None)
            self._encoded_instances.pop(vpc_id, None)
            with contextlib.suppress(FileNotFoundError):
                self._path(vpc_id).unlink()
        if current is not None:
            _stop_all(current.servers)

    def stop(self) -> None:
        """Close every socket (the agent is ending); what is served stays on disk."""
        with self.lock:
            _stop_all([s for listeners in self.listeners.values() for s in listeners.servers])
            self.listeners.clear()
