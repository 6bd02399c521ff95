"""What each VPC's DNS resolver and metadata service answer, pushed to the host.

The listeners run in the agent and never ask the control plane: this controller builds,
per VPC with a router on the host, everything they answer (`VpcServices`) and hands it
over with `serve_vpc` when it differs from what it last pushed. Woken by commits to the
tables it reads (instances, tags, load balancers, VPCs and their routing); the instance
controller also pushes a VPC itself right before a launch, so a first boot's metadata
reads find their instance.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import AgentContract, GuestDns, InstanceMetadata, VpcServices
from gureum.controllers.loop import BURST_SECONDS, ResyncLoop
from gureum.errors import AgentUnavailable, HostError
from gureum.services.ec2 import dhcp_options as dhcp
from gureum.services.ec2 import dns, imds, interfaces, networks
from gureum.services.ec2.security_groups import LIVE_STATES
from gureum.services.ec2.views import options_of
from gureum.services.elbv2 import dns as lb_dns
from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.vpc_services")
RESYNC_SECONDS = 5.0
T = TypeVar("T")


def guest_dns(s: Session, cloud: Cloud, vpc_ids: set[str]) -> dict[str, tuple[int, GuestDns]]:
    """Running instances of these VPCs: (slot, what their DHCP options say about DNS)."""
    vpcs = list(s.scalars(select(models.Vpc).where(models.Vpc.vpc_id.in_(vpc_ids))))
    by_vpc = dhcp.guest_dns_by_vpc(s, vpcs, cloud.config.region)
    return {inst.instance_id: (inst.slot, by_vpc[inst.vpc_id])
            for inst in s.scalars(select(models.Instance).where(
                models.Instance.vpc_id.in_(list(by_vpc)), models.Instance.state == "running"))}


def _columns(row: Any) -> tuple[Any, ...]:
    """Every column value of a row: what an answer built from it depends on."""
    return tuple(getattr(row, attr.key) for attr in sa_inspect(type(row)).column_attrs)


class MetadataCache:
    """Each instance's metadata, built again only when a row it is built from changed.

    A VPC's answers are rebuilt after every commit to its instances (a launch makes
    several), and building each instance's identity document and tree was most of that:
    with 200 instances in a VPC, every launch rebuilt all 200, several times. Comparing
    the inputs costs a fraction of building from them."""

    def __init__(self) -> None:
        # instance -> (its VPC, the inputs it was built from, what was built)
        self._built: dict[str, tuple[str, tuple[Any, ...], InstanceMetadata]] = {}

    def known(self, vpc_id: str, instance_id: str,
              inputs: tuple[Any, ...]) -> InstanceMetadata | None:
        """What was built from these same inputs, if anything."""
        known = self._built.get(instance_id)
        return known[2] if known is not None and known[:2] == (vpc_id, inputs) else None

    def remember(self, vpc_id: str, instance_id: str, inputs: tuple[Any, ...],
                 built: InstanceMetadata) -> None:
        self._built[instance_id] = (vpc_id, inputs, built)

    def keep(self, vpc_ids: set[str], instance_ids: set[str]) -> None:
        """Forget the instances of these VPCs that no longer answer there."""
        for instance_id in [i for i, (vpc_id, _, _) in self._built.items()
                            if vpc_id in vpc_ids and i not in instance_ids]:
            del self._built[instance_id]


def _tags(s: Session, live: list[models.Instance]) -> dict[str, dict[str, str]]:
    """The tags of each instance that shows them in its metadata (InstanceMetadataTags)."""
    tags: dict[str, dict[str, str]] = {inst.instance_id: {} for inst in live}
    tagged = [i.instance_id for i in live if options_of(i)["InstanceMetadataTags"] == "enabled"]
    if tagged:
        owner = {inst.instance_id: inst.account_id for inst in live}
        for tag in s.scalars(select(models.Tag).where(models.Tag.resource_id.in_(tagged))):
            if owner[tag.resource_id] == tag.account_id:
                tags[tag.resource_id][tag.key] = tag.value
    return tags


def _metadata(cloud: Cloud, cache: MetadataCache, inst: models.Instance, tags: dict[str, str],
              blocks: str, subnets: dict[str, str],
              enis: list[models.NetworkInterface]) -> InstanceMetadata:
    """One instance's metadata, from the cache when nothing it is built from changed."""
    region = cloud.config.region
    inputs = (_columns(inst), tags, region, blocks, subnets, [_columns(eni) for eni in enis])
    metadata = cache.known(inst.vpc_id, inst.instance_id, inputs)
    if metadata is None:
        metadata = imds.instance_metadata(inst, tags, region, blocks, subnets[inst.subnet_id],
                                          cloud.identity, enis, subnets)
        cache.remember(inst.vpc_id, inst.instance_id, inputs, metadata)
    return metadata


def one_instance(s: Session, cloud: Cloud, cache: MetadataCache, vpc_id: str,
                 private_ip: str) -> InstanceMetadata | None:
    """The metadata `build` makes for the live instance at `private_ip` in a VPC, from that
    instance's rows only (None: there is none)."""
    inst = s.scalar(select(models.Instance).where(
        models.Instance.vpc_id == vpc_id, models.Instance.private_ip == private_ip,
        models.Instance.state.in_(LIVE_STATES)))
    vpc = s.get(models.Vpc, vpc_id)
    if inst is None or vpc is None:
        return None
    subnets = {n.subnet_id: n.cidr for n in s.scalars(
        select(models.Subnet).where(models.Subnet.vpc_id == vpc_id))}
    if inst.subnet_id not in subnets:
        return None
    return _metadata(cloud, cache, inst, _tags(s, [inst])[inst.instance_id],
                     "\n".join(networks.vpc_cidrs(s, vpc)), subnets,
                     interfaces.of_instances(s, [inst.instance_id])[inst.instance_id])


def build(s: Session, cloud: Cloud, vpc_ids: set[str],
          cache: MetadataCache | None = None) -> dict[str, VpcServices]:
    """What the listeners of these VPCs answer, from the store (a fixed number of queries
    plus one per VPC); with a `cache`, only changed instances' metadata is built."""
    region = cloud.config.region
    vpcs = list(s.scalars(select(models.Vpc).where(models.Vpc.vpc_id.in_(vpc_ids))))
    if not vpcs:
        return {}
    ids = [v.vpc_id for v in vpcs]
    public = networks.public_subnet_ids(s, ids[0] if len(ids) == 1 else None)
    # Each VPC's own subnets: part of what its instances' metadata is built from, so a
    # subnet of another VPC must not make them look changed (MetadataCache).
    subnets_of: dict[str, dict[str, str]] = {vpc_id: {} for vpc_id in ids}
    for subnet in s.scalars(select(models.Subnet).where(models.Subnet.vpc_id.in_(ids))):
        subnets_of[subnet.vpc_id][subnet.subnet_id] = subnet.cidr
    live = list(s.scalars(select(models.Instance).where(
        models.Instance.vpc_id.in_(ids), models.Instance.state.in_(LIVE_STATES))
        .order_by(models.Instance.private_ip)))
    tags = _tags(s, live)
    lbs = list(s.scalars(select(LoadBalancer).where(LoadBalancer.vpc_id.in_(ids))))
    attached = interfaces.of_instances(s, [inst.instance_id for inst in live])
    cache = cache or MetadataCache()
    out = {}
    for vpc in vpcs:
        mine = [inst for inst in live if inst.vpc_id == vpc.vpc_id]
        blocks = "\n".join(networks.vpc_cidrs(s, vpc)) if mine else vpc.cidr
        instances: dict[str, InstanceMetadata] = {}
        subnets = subnets_of[vpc.vpc_id]
        for inst in mine:
            if inst.subnet_id not in subnets:
                continue
            instances[inst.private_ip] = _metadata(
                cloud, cache, inst, tags[inst.instance_id], blocks, subnets,
                attached.get(inst.instance_id, []))
        records = dns.records(mine, region) + lb_dns.records(
            [lb for lb in lbs if lb.vpc_id == vpc.vpc_id])
        out[vpc.vpc_id] = VpcServices(
            vpc=networks.vpc_network(s, vpc, public), instances=instances,
            dns_support=vpc.enable_dns_support,
            zones=(*dns.zones(region), lb_dns.zone(region)),
            records=tuple(sorted(records)),
            # Other names go out only when the operator allows outbound traffic, and only
            # for callers whose subnet routes to an attached internet gateway.
            forward_for=tuple(inst.private_ip for inst in mine if cloud.config.outbound
                              and inst.subnet_id in public))
    cache.keep(set(ids), {inst.instance_id for inst in live})
    return out


class VpcServicesController(ResyncLoop):
    name = "vpc-services-controller"
    resync_seconds = RESYNC_SECONDS
    min_interval = BURST_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        # (host key, VPC id) -> what that host's listeners of the VPC last took: every
        # host holding an instance of a VPC has its router and serves its answers.
        self.pushed: dict[tuple[str, str], VpcServices] = {}
        # One push at a time, the store read inside it: a later push never carries an
        # older view of the store than the one before it.
        self.lock = threading.RLock()
        # Commits that may change what is served, counted; `built_at`: the count each
        # VPC's last push was built from (what a launch checks instead of building).
        self.generation = 0
        self.built_at: dict[tuple[str, str], int] = {}
        self._count_lock = threading.Lock()
        # What each running instance's resolv.conf was last told (its DHCP options).
        self.dns_pushed: dict[str, GuestDns] = {}
        self.metadata = MetadataCache()  # used under `lock`

    def changed(self) -> None:
        """After a commit to a table this reads (cloud.WAKES)."""
        with self._count_lock:
            self.generation += 1
        self.wakeup.set()

    def sync(self) -> None:
        with self.cloud.store.read() as s:
            running = set(s.scalars(select(models.Instance.instance_id).where(
                models.Instance.state == "running")))
        with self.lock:
            for instance_id in set(self.dns_pushed) - running:  # a start boots it afresh
                del self.dns_pushed[instance_id]
        for key, agent in self.cloud.agents.live():
            try:
                built = set(self._calling(key, agent.vpc_routers))
                with self.lock:
                    for pushed in [k for k in self.pushed if k[0] == key and k[1] not in built]:
                        del self.pushed[pushed]  # a router made again starts empty
                        self.built_at.pop(pushed, None)
                if built or agent is self.cloud.agent:  # a host without routers: nothing
                    self.push(built, key)
            except AgentUnavailable as err:
                if agent is self.cloud.agent:
                    raise
                log.info("VPC services of host %s follow later: %s", key, err)

    def _calling(self, key: str, call: Callable[..., T], *args: Any) -> T:
        """An agent that could not be reached may come back as another one (a new host,
        a lost data directory): everything is pushed to it again once it answers. A
        restarted agent keeps what it served; this only costs one push per VPC."""
        try:
            return call(*args)
        except AgentUnavailable:
            with self.lock:
                for pushed in [k for k in self.pushed if k[0] == key]:
                    del self.pushed[pushed]
                    self.built_at.pop(pushed, None)
                self.dns_pushed.clear()
            raise

    def ensure_pushed(self, vpc_id: str, host: str | None = None,
                      private_ip: str | None = None) -> None:
        """Before a launch: the VPC's answers on its host are current, or at least name
        the instance at `private_ip` (its first metadata read comes within ~100 ms of
        boot). Usually the loop, woken by the launch's own commit, has pushed them
        already: then no store read. Other commits since (a batch's instances turning
        running one by one) are the loop's to push: a launch that waited for each would
        rebuild the whole VPC's answers once per instance."""
        key = host or self.cloud.agents.key(None)
        pushed = self.pushed.get((key, vpc_id))
        if private_ip is not None and pushed is not None and private_ip in pushed.instances:
            return
        with self.lock:  # a push may have run while this waited for the lock
            pushed = self.pushed.get((key, vpc_id))
            if pushed is not None and (self.built_at.get((key, vpc_id)) == self.generation
                                       or private_ip in pushed.instances):
                return
            if pushed is not None and private_ip is not None \
                    and self._push_instance(key, pushed, private_ip):
                return
            self.push({vpc_id}, key)

    def _push_instance(self, key: str, pushed: VpcServices, private_ip: str) -> bool:
        """A launch into a VPC the host serves already: its instance's metadata alone, in
        time for its first boot (the loop, woken by the same commits, pushes the rest: its
        DNS name, ...). Building and sending the whole VPC instead grew with the VPC's
        size (~90 ms at 200 instances). False: no such instance (yet)."""
        vpc_id = pushed.vpc.vpc_id
        with self.cloud.store.read() as s:
            metadata = one_instance(s, self.cloud, self.metadata, vpc_id, private_ip)
        if metadata is None:
            return False
        agent = self.cloud.agent_for(key)
        self.pushed.pop((key, vpc_id), None)  # unknown until the agent took it
        try:
            self._calling(key, agent.serve_instance, vpc_id, private_ip, metadata)
        except AgentUnavailable:
            raise
        except HostError as err:  # e.g. the agent lost what it served: push it all
            log.info("instance push to %s refused (%s): the whole VPC follows", key, err)
            return False
        self.pushed[(key, vpc_id)] = dataclasses.replace(
            pushed, instances={**pushed.instances, private_ip: metadata})
        return True

    def push(self, vpc_ids: set[str], host: str | None = None) -> None:
        """Serve these VPCs' current answers on a host (None: the control host), skipping
        those unchanged since the last push there."""
        key = host or self.cloud.agents.key(None)
        agent = self.cloud.agent_for(host or None)
        with self.lock:
            generation = self.generation  # before the read: a commit after it counts again
            with self.cloud.store.read() as s:
                wanted = build(s, self.cloud, vpc_ids, self.metadata)
                resolvers = guest_dns(s, self.cloud, vpc_ids)
                placed = dict(s.execute(select(models.Instance.instance_id,
                                               models.Instance.host_id).where(
                    models.Instance.instance_id.in_(list(resolvers)))).all())
            for vpc_id, services in wanted.items():
                if self.pushed.get((key, vpc_id)) != services:
                    self.pushed.pop((key, vpc_id), None)  # unknown until the agent took it
                    self._calling(key, agent.serve_vpc, services)
                    self.pushed[(key, vpc_id)] = services
                self.built_at[(key, vpc_id)] = generation
            self._push_dns(key, agent, {
                i: r for i, r in resolvers.items()
                if self.cloud.agents.key(placed.get(i)) == key})

    def _push_dns(self, key: str, agent: AgentContract,
                  resolvers: dict[str, tuple[int, GuestDns]]) -> None:
        """DHCP options reach running instances within a pass (EC2's instances wait for
        their lease's renewal); a boot writes them itself from the instance's spec."""
        for instance_id, (slot, dns_settings) in resolvers.items():
            if self.dns_pushed.get(instance_id) == dns_settings:
                continue
            try:
                self._calling(key, agent.configure_dns, instance_id, slot, dns_settings)
            except AgentUnavailable:
                raise
            except Exception as err:  # stopping under us: its next boot writes it
                log.warning("resolv.conf of %s not written: %s", instance_id, err)
                continue
            self.dns_pushed[instance_id] = dns_settings
