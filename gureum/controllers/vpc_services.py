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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import (
    AgentContract,
    DnsRecord,
    GuestDns,
    InstanceMetadata,
    VpcServices,
)
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


@dataclasses.dataclass
class _Member:
    """One live instance's part of what its VPC answers."""

    private_ip: str
    metadata: InstanceMetadata | None  # None: its subnet is not the VPC's (yet)
    records: tuple[DnsRecord, ...]
    forward: bool  # its other DNS queries go to the host's resolvers
    resolver: tuple[int, str | None] | None  # running: (slot, host id) for its resolv.conf


@dataclasses.dataclass
class VpcView:
    """What a VPC answers, kept per instance: a pass that knows which instances changed
    patches their parts (`patch`) instead of reading every instance of the VPC again."""

    services: VpcServices
    blocks: str
    subnets: dict[str, str]  # the VPC's subnets: id -> CIDR
    public: set[str]  # its subnets that reach an internet gateway
    lb_records: list[DnsRecord]
    guest_dns: GuestDns
    members: dict[str, _Member]  # instance id -> its part

    def assemble(self) -> None:
        """`services` from the members (in address order: the same whichever way built)."""
        ordered = sorted(self.members.values(), key=lambda m: m.private_ip)
        self.services = dataclasses.replace(
            self.services,
            instances={m.private_ip: m.metadata for m in ordered if m.metadata is not None},
            records=tuple(sorted([r for m in ordered for r in m.records] + self.lb_records)),
            forward_for=tuple(m.private_ip for m in ordered if m.forward))


def _member(cloud: Cloud, cache: MetadataCache, view: VpcView, inst: models.Instance,
            tags: dict[str, str], enis: list[models.NetworkInterface]) -> _Member:
    in_vpc = inst.subnet_id in view.subnets
    return _Member(
        private_ip=inst.private_ip,
        metadata=_metadata(cloud, cache, inst, tags, view.blocks, view.subnets, enis)
        if in_vpc else None,
        records=tuple(dns.records([inst], cloud.config.region)),
        # Other names go out only when the operator allows outbound traffic, and only
        # for callers whose subnet routes to an attached internet gateway.
        forward=cloud.config.outbound and inst.subnet_id in view.public,
        resolver=(inst.slot, inst.host_id) if inst.state == "running" else None)


def _live(s: Session, *where: Any) -> list[models.Instance]:
    return list(s.scalars(select(models.Instance).where(
        models.Instance.state.in_(LIVE_STATES), *where)))


def build(s: Session, cloud: Cloud, vpc_ids: set[str],
          cache: MetadataCache | None = None) -> dict[str, VpcView]:
    """What the listeners of these VPCs answer, from the store (a fixed number of queries
    plus a few per VPC); with a `cache`, only changed instances' metadata is built."""
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
    live = _live(s, models.Instance.vpc_id.in_(ids))
    tags = _tags(s, live)
    lbs = list(s.scalars(select(LoadBalancer).where(LoadBalancer.vpc_id.in_(ids))))
    attached = interfaces.of_instances(s, [inst.instance_id for inst in live])
    guest = dhcp.guest_dns_by_vpc(s, vpcs, region)
    cache = cache or MetadataCache()
    out = {}
    for vpc in vpcs:
        network = networks.vpc_network(s, vpc, public)
        view = VpcView(
            services=VpcServices(
                vpc=network, instances={}, dns_support=vpc.enable_dns_support,
                zones=(*dns.zones(region), lb_dns.zone(region)), records=()),
            blocks="\n".join((network.cidr, *network.secondary_cidrs)),
            subnets=subnets_of[vpc.vpc_id],
            public={n for n in subnets_of[vpc.vpc_id] if n in public},
            lb_records=lb_dns.records([lb for lb in lbs if lb.vpc_id == vpc.vpc_id]),
            guest_dns=guest[vpc.vpc_id], members={})
        for inst in live:
            if inst.vpc_id == vpc.vpc_id:
                view.members[inst.instance_id] = _member(
                    cloud, cache, view, inst, tags[inst.instance_id],
                    attached.get(inst.instance_id, []))
        view.assemble()
        out[vpc.vpc_id] = view
    cache.keep(set(ids), {inst.instance_id for inst in live})
    return out


def patch(s: Session, cloud: Cloud, views: dict[str, VpcView], touched: frozenset[str],
          cache: MetadataCache) -> set[str]:
    """Bring `views` current after commits that touched only these instances' rows: their
    parts are read and built again, nothing else. Returns the VPCs a patch cannot keep
    current (their routes go through interfaces, which instances change): build them."""
    if not touched:
        return set()
    rows = _live(s, models.Instance.instance_id.in_(list(touched)))
    tags = _tags(s, rows)
    attached = interfaces.of_instances(s, [inst.instance_id for inst in rows])
    patched, rebuild = set(), set()
    for vpc_id, view in views.items():
        for instance_id in touched & view.members.keys():  # gone, or rebuilt below
            del view.members[instance_id]
            patched.add(vpc_id)
    for inst in rows:
        view = views.get(inst.vpc_id)
        if view is None:  # a VPC not served yet: its first push builds it
            continue
        view.members[inst.instance_id] = _member(
            cloud, cache, view, inst, tags[inst.instance_id],
            attached.get(inst.instance_id, []))
        patched.add(inst.vpc_id)
    for vpc_id in patched:
        if views[vpc_id].services.vpc.policy_routes:
            rebuild.add(vpc_id)
        else:
            views[vpc_id].assemble()
    cache.keep(patched - rebuild, {i for v in patched - rebuild for i in views[v].members})
    return rebuild


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
        # Each VPC's answers as last read (under `lock`), and the instances whose rows
        # commits touched since (None: something else changed, so read everything again).
        self.views: dict[str, VpcView] = {}
        self._touched: set[str] | None = None
        self._built_all_at = 0.0

    def changed(self, instances: frozenset[str] | None = None) -> None:
        """After a commit to a table this reads (cloud.WAKES); `instances`: the commit
        changed only rows of these instances (None: unknown, or other rows too)."""
        with self._count_lock:
            self.generation += 1
            if instances is None:
                self._touched = None
            elif self._touched is not None:
                self._touched |= instances
        self.wakeup.set()

    def _current(self, s: Session, vpc_ids: set[str]) -> dict[str, VpcView]:
        """The views of these VPCs, current with what `s` reads (under `lock`). Commits
        after this takes the touched set are the next pass's, and `s` has read nothing
        yet, so it sees every commit whose instances are patched here."""
        with self._count_lock:
            touched, self._touched = self._touched, set()
        # A full read every resync as well, in case a change came by a path that does not
        # say which rows it touched.
        if touched is None or time.monotonic() - self._built_all_at > self.resync_seconds:
            self.views.clear()
            self._built_all_at = time.monotonic()
        else:
            for vpc_id in patch(s, self.cloud, self.views, frozenset(touched), self.metadata):
                del self.views[vpc_id]
        missing = vpc_ids - self.views.keys()
        if missing:
            self.views.update(build(s, self.cloud, missing, self.metadata))
        return {vpc_id: self.views[vpc_id] for vpc_id in vpc_ids if vpc_id in self.views}

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
                views = self._current(s, vpc_ids)
            for vpc_id, view in views.items():
                if self.pushed.get((key, vpc_id)) != view.services:
                    self.pushed.pop((key, vpc_id), None)  # unknown until the agent took it
                    self._calling(key, agent.serve_vpc, view.services)
                    self.pushed[(key, vpc_id)] = view.services
                self.built_at[(key, vpc_id)] = generation
            self._push_dns(key, agent, {
                instance_id: (member.resolver[0], view.guest_dns)
                for view in views.values() for instance_id, member in view.members.items()
                if member.resolver is not None
                and self.cloud.agents.key(member.resolver[1]) == key})

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
