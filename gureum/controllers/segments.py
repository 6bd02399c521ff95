"""VPCs across hosts: one VXLAN segment per VPC between the hosts holding its instances.

The store says where every live instance is (its host) and which interfaces it has
(each with a MAC derived from its primary address, unique in its VPC); this loop turns
that into one `VxlanSegment` per (host, VPC) whose instances sit on two hosts or more:
the VPC's VNI, the tunnel port, the host's own registered address, and every interface of
the VPC on the other hosts (MAC, addresses, that host's address). It hands each host its
segments with `sync_vpc_peers` when they differ from what it last pushed there, and an
empty one where a VPC stopped spanning hosts (the device goes). Woken by commits to
instances, network interfaces and load balancers (launch, terminate, stop, attach, new
addresses; a load balancer's node is on the control host, its targets may be anywhere) and
every 5 s; every 30 s it pushes every segment again, changed or not (a router remade, an
agent restarted: the agent writes only what differs from the kernel's state).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import SegmentPeer, VpcNetwork, VxlanSegment
from gureum.agent.network import mac_for
from gureum.config import Config
from gureum.controllers.loop import BURST_SECONDS, ResyncLoop
from gureum.errors import AgentUnavailable
from gureum.services.ec2 import networks
from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer
from gureum.store.host_models import Host

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.segments")
RESYNC_SECONDS = 5.0
# Unchanged segments are pushed again this often (a router remade, an agent restarted);
# not every pass: a big VPC's segment lists every interface on the other hosts.
REPUSH_SECONDS = 30.0
# Instances whose netns (and so whose MAC on their host's bridge) may exist.
LIVE = ("pending", "running", "stopping", "shutting-down")

Wanted = dict[str, dict[str, VxlanSegment]]  # host key -> VPC id -> segment there


def vni(config: Config, net_index: int) -> int:
    """The VPC's VNI: 12 bits of the control plane's prefix, then its 12-bit net index.
    The same on every host of the cloud; two clouds sharing one machine's tunnel port
    differ in the first half."""
    return ((int(config.prefix[2:6], 16) & 0xFFF) << 12) | net_index


def wanted(s: Session, cloud: Cloud) -> tuple[Wanted, dict[str, models.Vpc]]:
    """Every host's segments, from one read, and the VPC rows they concern."""
    agents = cloud.agents
    addresses = {h.host_id: h.address for h in s.scalars(select(Host))}
    if sum(1 for address in addresses.values() if address) < 2:
        return {}, {}  # one host: no VPC spans hosts (and every launch wakes this)
    on_hosts: dict[str, dict[str, list[SegmentPeer]]] = {}  # VPC -> host key -> interfaces
    for eni, host_id in s.execute(
            select(models.NetworkInterface, models.Instance.host_id)
            .join(models.Instance,
                  models.Instance.instance_id == models.NetworkInterface.instance_id)
            .where(models.Instance.state.in_(LIVE))):
        key = agents.key(host_id)
        address = addresses.get(key)
        if not address:  # a host without a known underlay address cannot be reached
            continue
        on_hosts.setdefault(eni.vpc_id, {}).setdefault(key, []).append(
            SegmentPeer(mac_for(eni.private_ip),
                        (*eni.addresses(), *(eni.ipv6_addresses or ())), address))
    # Load balancers' nodes run on the control host: their targets may be elsewhere.
    control = agents.key(None)
    if addresses.get(control):
        for lb_vpc, lb_ip in s.execute(select(LoadBalancer.vpc_id, LoadBalancer.private_ip)):
            on_hosts.setdefault(lb_vpc, {}).setdefault(control, []).append(
                SegmentPeer(mac_for(lb_ip), (lb_ip,), addresses[control]))
    spanning = {vpc_id: hosts for vpc_id, hosts in on_hosts.items() if len(hosts) > 1}
    vpcs = {v.vpc_id: v for v in s.scalars(select(models.Vpc).where(
        models.Vpc.vpc_id.in_(list(spanning))))} if spanning else {}
    out: Wanted = {}
    for vpc_id, hosts in spanning.items():
        vpc = vpcs.get(vpc_id)
        if vpc is None:
            continue
        for key in hosts:
            peers = sorted((p for other, found in hosts.items() if other != key for p in found),
                           key=lambda p: p.mac)
            out.setdefault(key, {})[vpc_id] = VxlanSegment(
                vni(cloud.config, vpc.net_index), cloud.config.vxlan_port, addresses[key],
                tuple(peers))
    return out, vpcs


class SegmentsLoop(ResyncLoop):
    """Owned by the network controller (its own thread and wakeup)."""

    name = "vpc-segments"
    resync_seconds = RESYNC_SECONDS
    min_interval = BURST_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.lock = threading.Lock()
        self.pushed: dict[tuple[str, str], VxlanSegment] = {}  # (host key, VPC id) -> segment
        # Hosts seen since they were last unreachable: the first pass with one removes
        # devices of VPCs that no longer span it (this process never pushed them).
        self.known: set[str] = set()
        self.repushed_at = time.monotonic()

    def changed(self) -> None:
        self.wakeup.set()

    def sync(self) -> None:
        with self.cloud.store.read() as s:
            want, rows = wanted(s, self.cloud)
            public = networks.public_subnet_ids(s) if rows else set()
            nets = {vpc_id: networks.vpc_network(s, vpc, public) for vpc_id, vpc in rows.items()}
            indexes = {v.vpc_id: v.net_index for v in s.scalars(select(models.Vpc))}
        full = not self.woken and time.monotonic() - self.repushed_at >= REPUSH_SECONDS
        if full:
            self.repushed_at = time.monotonic()
        for key, agent in self.cloud.agents.live():
            try:
                self._sync_host(key, agent, want.get(key, {}), nets, indexes, full)
            except AgentUnavailable as err:
                with self.lock:
                    self.known.discard(key)
                    for pushed in [k for k in self.pushed if k[0] == key]:
                        del self.pushed[pushed]
                if agent is self.cloud.agent:
                    raise
                log.info("VPC segments of host %s follow later: %s", key, err)

    def _sync_host(self, key: str, agent, mine: dict[str, VxlanSegment],  # noqa: ANN001
                   nets: dict[str, VpcNetwork], indexes: dict[str, int], full: bool) -> None:
        with self.lock:
            stale = {vpc_id for (host, vpc_id) in self.pushed if host == key} - set(mine)
            first = key not in self.known
        if first:  # what an earlier control plane left there
            stale |= set(agent.vpc_routers()) - set(mine)
        for vpc_id in sorted(stale):
            if vpc_id in indexes:  # a deleted VPC's router takes its device with it
                empty = VxlanSegment(0, 0, "")
                agent.sync_vpc_peers(VpcNetwork(vpc_id, indexes[vpc_id], "0.0.0.0/32", ()), empty)
            with self.lock:
                self.pushed.pop((key, vpc_id), None)
        for vpc_id, segment in sorted(mine.items()):
            with self.lock:
                same = self.pushed.get((key, vpc_id)) == segment
            if same and not full:
                continue
            agent.sync_vpc_peers(nets[vpc_id], segment)
            with self.lock:
                self.pushed[(key, vpc_id)] = segment
        with self.lock:
            self.known.add(key)
