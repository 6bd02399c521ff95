"""The network controller: keeps the host's VPC routers, their DNS and metadata
listeners, and the public-address map equal to what the store says.

Woken by any change to VPCs, subnets, gateways, routes or addresses; also re-checks
every few seconds. Routers are made on demand (a VPC's first launch) and removed once
their VPC is gone from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent.contract import PublicMap, VpcNetwork
from gureum.controllers.loop import ResyncLoop
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

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud

    def stop(self) -> None:
        super().stop()
        if self.cloud.vpc_services is not None:
            self.cloud.vpc_services.stop()

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
            for lb in s.scalars(select(LoadBalancer).where(LoadBalancer.public_ip.is_not(None))):
                if lb.subnet_id in public and lb.vpc_id in index:
                    wanted[lb.public_ip] = [lb.private_ip, index[lb.vpc_id]]
            return wanted

    # -- making the host agree ---------------------------------------------------------
    def ensure_vpc(self, vpc: VpcNetwork) -> None:
        """Router and listeners of a VPC, before an instance of it boots."""
        agent = self.cloud.agent
        assert agent is not None
        agent.ensure_vpc(vpc)
        if self.cloud.vpc_services is not None:
            self.cloud.vpc_services.ensure(vpc)

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
            if self.cloud.vpc_services is not None:
                self.cloud.vpc_services.forget(vpc_id)
            agent.remove_vpc(vpc_id)
        self.sync_public_ips()
