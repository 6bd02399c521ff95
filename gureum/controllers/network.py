"""The network controller: keeps the host's VPC routers and the public-address map equal
to what the store says, and owns the loop that feeds each router's DNS and metadata
listeners (`controllers/vpc_services.py`).

Woken by any change to VPCs, subnets, gateways, routes or addresses; also re-checks
every few seconds. Routers are made on demand (a VPC's first launch) and removed once
their VPC is gone from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent.contract import PublicMap, VpcNetwork
from gureum.controllers.loop import BURST_SECONDS, ResyncLoop
from gureum.controllers.vpc_services import VpcServicesController
from gureum.services.ec2 import networks
from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer

if TYPE_CHECKING:
    from gureum.cloud import Cloud

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

    def start(self) -> None:
        super().start()
        self.services.start()

    def stop(self) -> None:
        super().stop()
        self.services.stop()

    # -- what the store says -------------------------------------------------------------
    def wanted_public_ips(self) -> PublicMap:
        """public -> [private, VPC index] for live instances in public subnets."""
        with self.cloud.store.read() as s:
            public = networks.public_subnet_ids(s)
            index = {v.vpc_id: v.net_index for v in s.scalars(select(models.Vpc))}
            rows = s.scalars(select(models.Instance).where(
                models.Instance.state.in_(LIVE), models.Instance.public_ip.is_not(None)))
            wanted = {i.public_ip: [i.private_ip, index[i.vpc_id]] for i in rows
                      if i.subnet_id in public and i.vpc_id in index}
            # Elastic IPs on an interface's address (not its instance's primary one).
            for address, eni, _inst in s.execute(
                    select(models.Address, models.NetworkInterface, models.Instance)
                    .join(models.NetworkInterface,
                          models.NetworkInterface.eni_id == models.Address.eni_id)
                    .join(models.Instance,
                          models.Instance.instance_id == models.NetworkInterface.instance_id)
                    .where(models.Instance.state.in_(LIVE))):
                if eni.subnet_id in public and eni.vpc_id in index and address.private_ip:
                    wanted[address.public_ip] = [address.private_ip, index[eni.vpc_id]]
            for lb in s.scalars(select(LoadBalancer).where(LoadBalancer.public_ip.is_not(None))):
                if lb.subnet_id in public and lb.vpc_id in index:
                    wanted[lb.public_ip] = [lb.private_ip, index[lb.vpc_id]]
            return wanted

    # -- making the host agree ---------------------------------------------------------
    def ensure_vpc(self, vpc: VpcNetwork, private_ip: str | None = None) -> None:
        """Router of a VPC, its listeners serving the store's current answers (or, given
        `private_ip`, at least that instance's): before an instance of it boots."""
        agent = self.cloud.agent
        assert agent is not None
        agent.ensure_vpc(vpc)
        self.services.ensure_pushed(vpc.vpc_id, private_ip)

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
                agent.ensure_vpc(vpc)
        for vpc_id in built - set(vpcs):
            agent.remove_vpc(vpc_id)  # its listeners and what they served go with it
        self.sync_public_ips()
