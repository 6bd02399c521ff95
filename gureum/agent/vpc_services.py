"""The DNS and metadata listeners of each VPC, bound inside its router netns.

The socket itself says which VPC is asking; answers come from a lookup (the control
plane's store), so these run next to the store. On one host that is this process; with
many hosts they move beside each agent with the lookup over the wire.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Protocol

from gureum.agent import idmap
from gureum.agent.contract import VpcNetwork
from gureum.agent.dns import DnsServer, host_resolvers
from gureum.agent.metadata import InstanceMetadata, MetadataServer
from gureum.agent.network import DNS_ADDRESS, IMDS_ADDRESS, NetworkPlan


class VpcLookup(Protocol):
    """What the listeners ask the control plane."""

    def metadata_for(self, vpc_id: str, private_ip: str) -> InstanceMetadata | None: ...

    def dns_answers(self, vpc_id: str, name: str, qtype: str, client: str) -> list | None: ...

    def may_forward_dns(self, vpc_id: str, private_ip: str) -> bool: ...


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


class VpcListeners:
    def __init__(self, plan: NetworkPlan, lookup: VpcLookup, token_secret: bytes,
                 outbound: bool) -> None:
        self.plan = plan
        self.lookup = lookup
        self.token_secret = token_secret
        self.outbound = outbound
        self.listeners: dict[str, _Listeners] = {}
        self.lock = threading.RLock()

    def ensure(self, vpc: VpcNetwork) -> None:
        path = self.plan.router_path(vpc.vpc_id)
        inode = os.stat(path).st_ino
        with self.lock:
            current = self.listeners.get(vpc.vpc_id)
            if current is not None and current.inode == inode:
                return
            if current is not None:  # the router was remade: its old sockets are orphans
                _stop_all(current.servers)
            servers: list[DnsServer | MetadataServer] = []
            lookup, vpc_id = self.lookup, vpc.vpc_id
            try:
                imds = idmap.in_netns(path, lambda: _bound(socket.SOCK_STREAM, (IMDS_ADDRESS, 80)))
                servers.append(MetadataServer(
                    imds, lambda ip: lookup.metadata_for(vpc_id, ip), self.token_secret))
                for address in (vpc.resolver, DNS_ADDRESS):
                    sock = idmap.in_netns(path, lambda a=address: _bound(socket.SOCK_DGRAM, (a, 53)))
                    servers.append(DnsServer(
                        sock, lambda name, qtype, client: lookup.dns_answers(
                            vpc_id, name, qtype, client),
                        may_forward=lambda client: lookup.may_forward_dns(vpc_id, client),
                        upstreams=host_resolvers() if self.outbound else ()))
            except Exception:
                for server in servers:
                    server.stop()
                raise
            for server in servers:
                server.start()
            self.listeners[vpc_id] = _Listeners(inode, servers)

    def forget(self, vpc_id: str) -> None:
        with self.lock:
            current = self.listeners.pop(vpc_id, None)
        if current is not None:
            _stop_all(current.servers)

    def stop(self) -> None:
        with self.lock:
            _stop_all([s for listeners in self.listeners.values() for s in listeners.servers])
            self.listeners.clear()
