"""The network controller: keeps the host's VPC routers, their DNS and metadata
listeners, and the public-address map equal to what the store says.

Woken by any change to VPCs, subnets, gateways, routes or addresses; also re-checks
every few seconds. Routers are made on demand (a VPC's first launch) and removed once
their VPC is gone from the store.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent import idmap
from gureum.agent.dns import DnsServer, host_resolvers
from gureum.agent.metadata import MetadataServer
from gureum.agent.network import DNS_ADDRESS, IMDS_ADDRESS, VpcNetwork
from gureum.controllers.loop import ResyncLoop
from gureum.services.ec2 import networks
from gureum.store import models

if TYPE_CHECKING:
    from gureum.cloud import Cloud

RESYNC_SECONDS = 5.0
LIVE = ("pending", "running")


@dataclass
class _Listeners:
    """The DNS and metadata listeners of one VPC, bound inside its router netns."""

    inode: int
    servers: list[DnsServer | MetadataServer]

    def stop(self) -> None:
        _stop_all(self.servers)


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


class NetworkController(ResyncLoop):
    name = "network-controller"
    resync_seconds = RESYNC_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.listeners: dict[str, _Listeners] = {}
        self.lock = threading.RLock()

    def stop(self) -> None:
        super().stop()
        with self.lock:
            _stop_all([server for listeners in self.listeners.values()
                       for server in listeners.servers])
            self.listeners.clear()

    # -- what the store says -------------------------------------------------------------
    def wanted_public_ips(self) -> dict[str, list]:
        """public -> [private, VPC index] for live instances in public subnets."""
        with self.cloud.store.read() as s:
            public = networks.public_subnet_ids(s)
            index = {v.vpc_id: v.net_index for v in s.scalars(select(models.Vpc))}
            rows = s.scalars(select(models.Instance).where(
                models.Instance.state.in_(LIVE), models.Instance.public_ip.is_not(None)))
            return {i.public_ip: [i.private_ip, index[i.vpc_id]] for i in rows
                    if i.subnet_id in public and i.vpc_id in index}

    # -- making the host agree ---------------------------------------------------------
    def ensure_vpc(self, vpc: VpcNetwork) -> None:
        """Router and listeners of a VPC, before an instance of it boots."""
        agent = self.cloud.agent
        assert agent is not None
        agent.ensure_vpc(vpc)
        self._ensure_listeners(vpc)

    def sync_public_ips(self) -> None:
        agent = self.cloud.agent
        if agent is not None:
            agent.sync_public_ips(self.wanted_public_ips())

    def sync(self) -> None:
        agent = self.cloud.agent
        assert agent is not None
        with self.cloud.store.read() as s:
            vpcs = {v.vpc_id: v for v in s.scalars(select(models.Vpc))}
            public = networks.public_subnet_ids(s)
            wanted = [networks.vpc_network(s, v, public) for v in vpcs.values()]
        built = set(agent.vpc_routers())
        for vpc in wanted:
            if vpc.vpc_id in built:  # keep subnets and egress current; build on demand only
                self.ensure_vpc(vpc)
        for vpc_id in built - set(vpcs):
            self._forget_listeners(vpc_id)
            agent.remove_vpc(vpc_id)
        self.sync_public_ips()

    # -- listeners -----------------------------------------------------------------------
    def _ensure_listeners(self, vpc: VpcNetwork) -> None:
        path = self.cloud.agent.plan.router_path(vpc.vpc_id)  # type: ignore[union-attr]
        inode = os.stat(path).st_ino
        with self.lock:
            current = self.listeners.get(vpc.vpc_id)
            if current is not None and current.inode == inode:
                return
            if current is not None:  # the router was remade: its old sockets are orphans
                current.stop()
            servers: list[DnsServer | MetadataServer] = []
            try:
                imds = idmap.in_netns(path, lambda: _bound(socket.SOCK_STREAM, (IMDS_ADDRESS, 80)))
                servers.append(MetadataServer(
                    imds, lambda ip: self.cloud.metadata_for(vpc.vpc_id, ip),
                    self.cloud.identity.token_secret))
                for address in (vpc.resolver, DNS_ADDRESS):
                    sock = idmap.in_netns(path, lambda a=address: _bound(socket.SOCK_DGRAM, (a, 53)))
                    servers.append(DnsServer(
                        sock, lambda name, qtype, client: self.cloud.dns_answers(
                            vpc.vpc_id, name, qtype, client),
                        may_forward=lambda client: self.cloud.may_forward_dns(vpc.vpc_id, client),
                        upstreams=host_resolvers() if self.cloud.config.outbound else ()))
            except Exception:
                for server in servers:
                    server.stop()
                raise
            for server in servers:
                server.start()
            self.listeners[vpc.vpc_id] = _Listeners(inode, servers)

    def _forget_listeners(self, vpc_id: str) -> None:
        with self.lock:
            current = self.listeners.pop(vpc_id, None)
        if current is not None:
            current.stop()
