"""The network controller: keeps the host's VPC routers and the public-address map equal
to what the store says, and owns the loop that feeds each router's DNS and metadata
listeners (`controllers/vpc_services.py`) and the one that keeps VPCs' VXLAN segments
between hosts (`controllers/segments.py`).

Woken by any change to VPCs, subnets, gateways, routes or addresses; also re-checks
every few seconds. Routers are made on demand (a VPC's first launch) and removed once
their VPC is gone from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from gureum.agent.contract import PublicMap, VpcNetwork
from gureum.controllers.loop import BURST_SECONDS, ResyncLoop
from gureum.controllers.segments import SegmentsLoop
from gureum.controllers.vpc_services import VpcServicesController
from gureum.errors import AgentUnavailable
from gureum.services.ec2 import networks
from gureum.services.ec2.handlers import nat_gateways
from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.network")
RESYNC_SECONDS = 5.0
LIVE = ("pending", "running")


class NetworkController(ResyncLoop):
    name = "network-controller"
    resync_seconds = RESYNC_SECONDS
    min_interval = BURST_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        # Its own loop and wakeups: instance changes must reach the listeners, but must
        # not wake this controller (see cloud.WAKES).
        self.services = VpcServicesController(cloud)
        # VPCs whose instances span hosts: their VXLAN segments (controllers/segments.py).
        self.segments = SegmentsLoop(cloud)
        # Whether a change since the last pass may matter whatever interfaces say: set
        # by any change but one to interfaces alone, and by this loop's own retries.
        self._full = True
        self._full_lock = threading.Lock()
        # When the last whole pass began: interface commits can come more often than the
        # resync, and must not starve it (the timer only fires on a quiet loop).
        self._full_at = 0.0

    def changed(self, interfaces_only: bool = False) -> None:
        """After a commit to a table this reads (cloud.WAKES); `interfaces_only`: only
        network interfaces changed."""
        if not interfaces_only:
            with self._full_lock:
                self._full = True
        self.wakeup.set()

    def start(self) -> None:
        super().start()
        self.services.start()
        self.segments.start()

    def stop(self) -> None:
        super().stop()
        self.services.stop()
        self.segments.stop()

    # -- what the store says -------------------------------------------------------------
    def wanted_public_ips(self, host: str | None = None) -> PublicMap:
        """public -> [private, VPC index] for live instances in public subnets, of one
        host (its key, hosts/agents.py; None: the control host, which also holds every
        load balancer)."""
        agents = self.cloud.agents
        return self.public_ips_by_host().get(host or agents.key(None), {})

    def public_ips_by_host(self) -> dict[str, PublicMap]:
        """Every host's public-address map, from one read (the control host's always)."""
        agents = self.cloud.agents
        control = agents.key(None)
        by_host: dict[str, PublicMap] = {control: {}}
        with self.cloud.store.read() as s:
            public = networks.public_subnet_ids(s)
            index = {v.vpc_id: v.net_index for v in s.scalars(select(models.Vpc))}
            Inst = models.Instance  # columns, not objects: every launch wakes this
            rows = s.execute(select(Inst.public_ip, Inst.private_ip, Inst.subnet_id,
                                    Inst.vpc_id, Inst.host_id).where(
                Inst.state.in_(LIVE), Inst.public_ip.is_not(None)))
            for public_ip, private_ip, subnet_id, vpc_id, host_id in rows:
                if subnet_id in public and vpc_id in index:
                    by_host.setdefault(agents.key(host_id), {})[public_ip] = [
                        private_ip, index[vpc_id]]
            # Elastic IPs on an interface's address (not its instance's primary one), on
            # the host of the instance the interface is attached to.
            for address, eni, inst in s.execute(
                    select(models.Address, models.NetworkInterface, models.Instance)
                    .join(models.NetworkInterface,
                          models.NetworkInterface.eni_id == models.Address.eni_id)
                    .join(models.Instance,
                          models.Instance.instance_id == models.NetworkInterface.instance_id)
                    .where(models.Instance.state.in_(LIVE))):
                if eni.subnet_id in public and eni.vpc_id in index and address.private_ip:
                    by_host.setdefault(agents.key(inst.host_id), {})[address.public_ip] = [
                        address.private_ip, index[eni.vpc_id]]
            for lb in s.scalars(select(LoadBalancer).where(LoadBalancer.public_ip.is_not(None))):
                if lb.subnet_id in public and lb.vpc_id in index:
                    by_host[control][lb.public_ip] = [lb.private_ip, index[lb.vpc_id]]
        return by_host

    # -- making the host agree ---------------------------------------------------------
    def ensure_vpc(self, vpc: VpcNetwork, host_id: str | None = None,
                   private_ip: str | None = None) -> None:
        """Router of a VPC on a host (None: the control host), its listeners serving the
        store's current answers (or, given `private_ip`, at least that instance's):
        before an instance of it boots there."""
        self.cloud.agent_for(host_id).ensure_vpc(vpc)
        self.services.ensure_pushed(vpc.vpc_id, self.cloud.agents.key(host_id), private_ip)

    def sync_public_ips(self) -> None:
        """Every host maps the public addresses of the instances it runs, exactly. A launch
        maps its own address too, so a map read before a launch's commit would take that
        address off again until the next pass: a read during which host work that maps
        began is made again (a few times; then the next pass maps)."""
        instances = self.cloud.controller
        for _ in range(3):
            begun = instances.mappings_begun if instances is not None else 0
            wanted = self.public_ips_by_host()
            if instances is None or instances.mappings_begun == begun:
                break
        else:
            self.changed()  # launches keep beginning: the next pass maps
            return
        for key, agent in self.cloud.agents.live():
            try:
                agent.sync_public_ips(wanted.get(key, {}))
            except AgentUnavailable as err:
                if agent is self.cloud.agent:
                    raise
                log.info("public addresses of host %s follow later: %s", key, err)

    def sync(self) -> None:
        with self._full_lock:
            full, self._full = self._full, False
        if self.woken and not full and time.monotonic() - self._full_at < self.resync_seconds:
            with self.cloud.store.read() as s:  # interfaces alone: do they name anything?
                if not interfaces_matter(s):
                    return
        self._full_at = time.monotonic()
        with self.cloud.store.read() as s:
            moving = nat_gateways.moving(s)
        if moving:  # NAT gateways move on (a write only then): their rules follow below
            with self.cloud.store.write() as s:
                nat_gateways.advance(s)
        with self.cloud.store.read() as s:
            vpcs = {v.vpc_id: v for v in s.scalars(select(models.Vpc))}
            public = networks.public_subnet_ids(s)
            wanted = [networks.vpc_network(s, v, public) for v in vpcs.values()]
        for key, agent in self.cloud.agents.live():  # each host keeps its own routers current
            try:
                built = set(agent.vpc_routers())
                for vpc in wanted:
                    if vpc.vpc_id in built:  # keep subnets and egress current; build on demand
                        agent.ensure_vpc(vpc)
                for vpc_id in built - set(vpcs):
                    agent.remove_vpc(vpc_id)  # its listeners and what they served go with it
            except AgentUnavailable as err:
                if agent is self.cloud.agent:
                    raise
                log.info("routers of host %s follow later: %s", key, err)
        self.sync_public_ips()


def interfaces_matter(s: Session) -> bool:
    """Whether a network interface's changes can reach routers or the public map: only
    through an Elastic IP associated with an interface or a route to one (a launch's
    interface otherwise changes neither: the launch maps its own public address)."""
    return bool(s.scalar(select(exists().where(models.Address.eni_id.is_not(None))))
                or s.scalar(select(exists().where(models.Route.gateway_id.like("eni-%")))))
