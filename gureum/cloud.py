"""The cloud: one object that holds config, store, host agent and controllers.

`gureum up` builds one; handlers reach it through their RequestContext.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent import image as image_mod
from gureum.agent.agent import HostAgent
from gureum.agent.contract import AgentContract
from gureum.agent.network import plan_for
from gureum.config import Config
from gureum.errors import HostError
from gureum.pki import CloudCA
from gureum.services.ec2 import networks
from gureum.services.ec2.identity import IdentitySigner
from gureum.services.ec2.security_groups import LIVE_STATES
from gureum.store import models
from gureum.store.db import Store

if TYPE_CHECKING:
    from gureum.controllers.autoscaling import AutoScalingController
    from gureum.controllers.ebs import EbsController
    from gureum.controllers.hosts import HostsController
    from gureum.controllers.load_balancers import LoadBalancerController
    from gureum.controllers.metrics import MetricsController
    from gureum.controllers.network import NetworkController

log = logging.getLogger("gureum.cloud")
# Which controllers a committed change to each table concerns.
WAKES: dict[str, tuple[str, ...]] = {
    # Not the network controller: a launch maps its own public address once the instance
    # is wired; mapping it earlier sends the first packets to an address with no
    # neighbour yet, and the router waits a second before asking again. What VPCs' DNS
    # and metadata answer is pushed by its own light loop ("vpc_services") instead.
    "instances": ("instances", "firewall", "load_balancers", "autoscaling", "vpc_services",
                  "ebs", "segments"),
    **{table: ("ebs",) for table in ("volumes", "snapshots", "images")},
    "tags": ("vpc_services",),  # instance tags in the metadata
    "security_groups": ("firewall", "load_balancers"),
    "security_group_rules": ("firewall", "load_balancers"),
    # A list's current entries are what its rules allow.
    **{table: ("firewall", "load_balancers") for table in (
        "managed_prefix_lists", "prefix_list_versions")},
    "load_balancers": ("load_balancers", "network", "firewall", "vpc_services", "segments"),
    **{table: ("load_balancers",) for table in ("listeners", "listener_rules", "target_groups")},
    # Targets' health moves instance refreshes and ELB health checks of groups on.
    "targets": ("load_balancers", "autoscaling"),
    **{table: ("network", "vpc_services") for table in (
        "vpcs", "subnets", "internet_gateways", "route_tables", "routes",
        "route_table_associations", "addresses", "vpc_peering_connections",
        "nat_gateways", "vpc_cidr_blocks", "egress_only_internet_gateways")},
    "dhcp_options": ("vpc_services",),  # instances' resolv.conf
    # Interfaces' cables and addresses are kept by the firewall controller, with their
    # groups; an Elastic IP may map to an interface's address; IMDS lists them.
    # VPC segments across hosts carry every interface's MAC and addresses.
    "network_interfaces": ("firewall", "network", "vpc_services", "segments"),
    **{table: ("autoscaling",) for table in (
        "autoscaling_groups", "autoscaling_instances", "autoscaling_policies",
        "autoscaling_instance_refreshes", "autoscaling_scheduled_actions",
        "autoscaling_lifecycle_hooks", "metric_alarms")},
}
# Tables whose rows belong to one instance each (by `instance_id` or `resource_id`): a
# commit changing only these tells the VPC services which instances to read again.
PER_INSTANCE = frozenset({"instances", "network_interfaces", "tags"})
CLOUD_OWNER_ID = "000000000001"
KEY_CACHE_SECONDS = 5.0  # how long an access key is trusted before the store is asked again
CLOUD_OWNER_ALIAS = "gureum"


class Cloud:
    def __init__(self, config: Config, with_agent: bool = True,
                 agent: AgentContract | None = None) -> None:
        """`agent` replaces the host's own (the fake agent of the fast tests)."""
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.store_url)
        self.store.migrate()
        self._adopt_instances_without_vpc()
        self.store.on_commit_instances(self._wake_for)
        self.agent = agent or (self._agent() if with_agent else None)
        from gureum.hosts.agents import HostAgents

        self.agents = HostAgents(self)  # host id -> its agent (joined hosts over TLS)
        self.control_host_id: str | None = None
        from gureum.hosts.registry import Heartbeats

        self.heartbeats = Heartbeats(self.store)  # started by cli/up.start_cloud
        self.wakeup = threading.Event()
        self._keys: dict[str, tuple[str, str, float]] = {}
        self._default_networks: set[str] = set()
        self.controller = None
        self.firewall_controller = None
        self.identity = IdentitySigner(config.data_dir / "identity", config.region)
        self.ca = CloudCA(config.data_dir)
        self.network_controller: NetworkController | None = None
        self.load_balancer_controller: LoadBalancerController | None = None
        self.metrics_controller: MetricsController | None = None
        self.autoscaling_controller: AutoScalingController | None = None
        self.ebs_controller: EbsController | None = None
        self.hosts_controller: HostsController | None = None

    def _wake_for(self, tables: set[str], instances: frozenset[str] | None = None) -> None:
        """After a commit (ours, or on PostgreSQL another process's): wake every controller
        whose inputs changed. Each controller is read once: a control plane that stops
        leading sets them to None from another thread. `instances`: the ones whose rows
        the commit touched (None: unknown)."""
        wanted = {name for table in tables for name in WAKES.get(table, ())}
        if "hosts" in tables:  # a host joined, re-joined or left: its agent is read again
            self.agents.forget()
        if "instances" in wanted:
            self.wakeup.set()
        if "firewall" in wanted:
            self.firewall_changed()
        if "network" in wanted:
            # Interfaces alone (every launch and termination writes one) reach routers and
            # the public map only by an Elastic IP or a route that names one.
            self.network_changed(interfaces_only=all(
                table == "network_interfaces" or "network" not in WAKES.get(table, ())
                for table in tables))
        for name, controller in (("load_balancers", self.load_balancer_controller),
                                 ("autoscaling", self.autoscaling_controller),
                                 ("ebs", self.ebs_controller)):
            if name in wanted and controller is not None:
                controller.wakeup.set()
        network = self.network_controller
        if "vpc_services" in wanted and network is not None:
            # Only instances' own rows changed: the VPC services patch just theirs.
            per_instance = all(table in PER_INSTANCE or "vpc_services" not in WAKES.get(table, ())
                               for table in tables)
            network.services.changed(instances if per_instance else None)
        if "segments" in wanted and network is not None:
            network.segments.changed()

    def hosts_changed(self, back: set[str]) -> None:
        """Hosts were lost or came back: Auto Scaling looks at its groups' health, and the
        instance controller reconciles each returning host with the store at once."""
        autoscaling, instances = self.autoscaling_controller, self.controller
        if autoscaling is not None:
            autoscaling.wakeup.set()
        if instances is not None and back:
            instances.hosts_back(back)
        self.wakeup.set()

    def firewall_changed(self) -> None:
        """Something that may alter instances' security-group rules changed."""
        controller = self.firewall_controller
        if controller is not None:
            controller.wakeup.set()

    def _adopt_instances_without_vpc(self) -> None:
        """Instances made before VPCs were stored name their account's default VPC and
        subnet by derived id only: make those rows, so they are found after an upgrade."""
        with self.store.write() as s:
            known = set(s.scalars(select(models.Vpc.vpc_id)))
            for account_id, vpc_id in s.execute(select(
                    models.Instance.account_id, models.Instance.vpc_id).distinct()).all():
                if vpc_id not in known and vpc_id == networks.default_vpc_id(account_id):
                    networks.ensure_default_network(s, self.config, account_id)
                    known.add(vpc_id)

    def network_changed(self, interfaces_only: bool = False) -> None:
        """VPCs, subnets, gateways or routes changed (or only network interfaces, with
        `interfaces_only`): routers and public addresses follow."""
        controller = self.network_controller
        if controller is not None:
            controller.changed(interfaces_only)

    def sync_public_ips(self) -> None:
        """Make the host's public-address map match the store now (an address moved).
        The store is already committed: if the host cannot follow right now, the network
        controller converges it on its next pass, and the caller is not failed for it."""
        controller = self.network_controller
        if controller is None:
            return
        try:
            controller.sync_public_ips()
        except HostError as err:
            log.warning("public addresses follow on the next network pass: %s", err)
            self.network_changed()

    def public_dns_answers(self, name: str, qtype: str) -> list | None:
        """gureum's authoritative answers for the world: load balancers' names and
        instances' public names (to their public addresses)."""
        from dnslib import QTYPE, RR, A

        from gureum.services.ec2 import dns
        from gureum.services.ec2.views import public_dns
        from gureum.services.elbv2 import dns as lb_dns
        from gureum.store.elbv2_models import Listener, ListenerRule, LoadBalancer

        region = self.config.region
        with self.store.read() as s:
            lbs = list(s.scalars(select(LoadBalancer)))
            answers = lb_dns.answer(name, qtype, region, lbs, inside_vpc=False)
            if answers is not None:
                return answers
            if name.endswith("." + lb_dns.apps_zone(region)):
                claims = [(lb, rule.conditions) for rule, lb in s.execute(
                    select(ListenerRule, LoadBalancer)
                    .join(Listener, Listener.arn == ListenerRule.listener_arn)
                    .join(LoadBalancer, LoadBalancer.arn == Listener.load_balancer_arn))]
                return lb_dns.app_answer(name, qtype, region, claims)
            if not name.endswith("." + dns.zones(region)[1]):
                return None
            for inst in s.scalars(select(models.Instance).where(
                    models.Instance.public_ip.is_not(None),
                    models.Instance.state.in_(LIVE_STATES))):
                if public_dns(inst.public_ip, region) == name:
                    return [RR(name, QTYPE.A, rdata=A(inst.public_ip), ttl=dns.TTL)] \
                        if qtype in ("A", "ANY") else []
        return []

    def _agent(self) -> AgentContract:
        if self.config.agent_socket:
            from gureum.agent.client import RemoteAgent

            return RemoteAgent(Path(self.config.agent_socket), plan_for(self.config),
                               self.config.agent_token_path)
        agent = HostAgent(self.config)
        agent.resume()  # metadata and DNS of existing VPCs answer before any controller runs
        return agent

    # -- accounts ----------------------------------------------------------------------
    def create_account(self, name: str) -> tuple[str, str, str]:
        """Returns (account_id, access_key_id, secret_access_key)."""
        with self.store.write() as s:
            return self._create_account(s, name)

    @staticmethod
    def _create_account(s: Session, name: str) -> tuple[str, str, str]:
        account_id = "".join(secrets.choice("0123456789") for _ in range(12))
        s.add(models.Account(account_id=account_id, name=name))
        s.flush()
        access = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
                                  for _ in range(16))
        secret = secrets.token_urlsafe(30)[:40]
        s.add(models.AccessKey(access_key_id=access, secret_access_key=secret,
                               account_id=account_id))
        return account_id, access, secret

    def account_by_name(self, name: str) -> models.Account | None:
        with self.store.read() as s:
            return s.scalar(select(models.Account).where(models.Account.name == name))

    def account_exists(self, account_id: str) -> bool:
        with self.store.read() as s:
            return s.get(models.Account, account_id) is not None

    def credentials_of(self, account_id: str) -> models.AccessKey | None:
        with self.store.read() as s:
            return s.scalar(select(models.AccessKey).where(models.AccessKey.account_id == account_id))

    def _key(self, access_key_id: str) -> tuple[str, str] | None:
        """(secret, account) of an access key; cached for KEY_CACHE_SECONDS, so a key that
        `gureum account delete` removed (from another process) stops working soon after."""
        cached = self._keys.get(access_key_id)
        now = time.monotonic()
        if cached is None or cached[2] < now:
            with self.store.read() as s:
                key = s.get(models.AccessKey, access_key_id)
                if key is None:
                    self._keys.pop(access_key_id, None)
                    return None
                cached = (key.secret_access_key, key.account_id, now + KEY_CACHE_SECONDS)
            self._keys[access_key_id] = cached
        return cached[0], cached[1]

    def forget_keys_of(self, account_id: str) -> None:
        """Drop the cached keys of a deleted account (this process: at once)."""
        for access_key_id, cached in list(self._keys.items()):
            if cached[1] == account_id:
                self._keys.pop(access_key_id, None)

    def secret_for(self, access_key_id: str) -> str | None:
        key = self._key(access_key_id)
        return key[0] if key else None

    def account_for(self, access_key_id: str) -> str:
        key = self._key(access_key_id)
        assert key is not None
        return key[1]

    def ensure_default_account(self) -> tuple[str, str, str]:
        """Looked up and, the first time, made in one write: control planes starting
        together on one database make a single default account."""
        with self.store.write() as s:
            account = s.scalar(select(models.Account).where(models.Account.name == "default"))
            if account is None:
                return self._create_account(s, "default")
            key = s.scalar(select(models.AccessKey).where(
                models.AccessKey.account_id == account.account_id))
            assert key is not None
            return account.account_id, key.access_key_id, key.secret_access_key

    # -- images ------------------------------------------------------------------------
    def register_default_image(self) -> image_mod.Image:
        """The cloud's images (the default and the systemd one) registered when built;
        returns the default."""
        found = image_mod.images(self.config.image_cache)
        with self.store.write() as s:
            for img in found:
                if (img is not found[0] and not image_mod.is_built(img)) or s.get(
                        models.Image, img.image_id) is not None:
                    continue
                s.add(models.Image(image_id=img.image_id, name=img.name, owner_id=CLOUD_OWNER_ID,
                                   owner_alias=CLOUD_OWNER_ALIAS, description=img.description,
                                   rootfs=str(img.rootfs), init_system=img.init_system))
        return found[0]

    # -- the default network of an account --------------------------------------------
    @property
    def availability_zone(self) -> str:
        return self.config.region + "a"

    def zones(self) -> list[str]:
        """The availability zones: those the hosts declare (the default one always)."""
        from gureum.hosts import registry

        return registry.zones(self.store, self.config)

    def agent_for(self, host_id: str | None) -> AgentContract:
        """The agent of the host an instance was placed on (None: the control host)."""
        return self.agents.get(host_id)

    def default_vpc_id(self, account_id: str) -> str:
        return networks.default_vpc_id(account_id)

    def default_subnet_id(self, account_id: str) -> str:
        return networks.default_subnet_id(account_id, self.availability_zone)

    def default_group_id(self, account_id: str) -> str:
        return networks.default_group_id(account_id, self.default_vpc_id(account_id), True)

    def ensure_default_network(self, account_id: str) -> None:
        """The account's default VPC and friends exist (made on first use). Called before a
        handler's own transaction; remembered, so Describe calls stay read-only after the
        first (default VPCs and subnets cannot be deleted)."""
        if account_id in self._default_networks:
            return
        with self.store.write() as s:
            networks.ensure_default_network(s, self.config, account_id)
        self._default_networks.add(account_id)

