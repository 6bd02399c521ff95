"""Read-only, all-accounts views from the store: accounts with what they hold, and each
host's instances (every account's) with their share of its vCPUs and memory."""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from gureum.cloud import CLOUD_OWNER_ID, Cloud
from gureum.errors import OperatorError
from gureum.hosts.registry import default_zone
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.store import models
from gureum.store.autoscaling_models import AutoScalingGroup
from gureum.store.ebs_models import Volume
from gureum.store.elbv2_models import LoadBalancer
from gureum.store.host_models import Host

DEFAULT_ACCOUNT = "default"  # the account `gureum up` made: the operator's own
# States in which an instance holds its cgroup limits on the host.
USING_HOST = ("pending", "running", "stopping", "shutting-down")


@dataclass
class AccountSummary:
    account_id: str
    name: str
    access_key_ids: list[str]
    instances: int = 0  # not terminated
    volumes: int = 0
    load_balancers: int = 0
    auto_scaling_groups: int = 0


@dataclass
class InstanceUse:
    account_id: str
    account_name: str
    instance_id: str
    instance_type: str
    state: str
    vcpus: int
    memory_mib: int


@dataclass
class HostUsage:
    host: str
    host_id: str
    zone: str
    state: str
    vcpus: int
    memory_mib: int
    cpu_overcommit: float
    memory_overcommit: float
    instances: list[InstanceUse] = field(default_factory=list)

    @property
    def vcpus_in_use(self) -> int:
        return sum(i.vcpus for i in self.instances if i.state in USING_HOST)

    @property
    def memory_mib_in_use(self) -> int:
        return sum(i.memory_mib for i in self.instances if i.state in USING_HOST)


def resolve(cloud: Cloud, ref: str) -> models.Account:
    """An account by its 12-digit id or its name."""
    with cloud.store.read() as s:
        account = s.get(models.Account, ref) or s.scalar(
            select(models.Account).where(models.Account.name == ref))
    if account is None:
        raise OperatorError(f"no account {ref!r} (give its 12-digit id or its name; "
                            "`gureum account list` shows them)")
    return account


def is_protected(account: models.Account) -> bool:
    """The operator's own account (and the cloud's, which owns the public images)."""
    return account.name == DEFAULT_ACCOUNT or account.account_id == CLOUD_OWNER_ID


def accounts(cloud: Cloud) -> list[AccountSummary]:
    with cloud.store.read() as s:
        found = {a.account_id: AccountSummary(a.account_id, a.name, [])
                 for a in s.scalars(select(models.Account).order_by(models.Account.created_at))}
        for key in s.scalars(select(models.AccessKey)):
            if key.account_id in found:
                found[key.account_id].access_key_ids.append(key.access_key_id)
        counts = {
            "instances": Counter(s.scalars(select(models.Instance.account_id).where(
                models.Instance.state != "terminated"))),
            "volumes": Counter(s.scalars(select(Volume.account_id))),
            "load_balancers": Counter(s.scalars(select(LoadBalancer.account_id))),
            "auto_scaling_groups": Counter(s.scalars(select(AutoScalingGroup.account_id))),
        }
    for kind, per_account in counts.items():
        for account_id, n in per_account.items():
            if account_id in found:
                setattr(found[account_id], kind, n)
    return list(found.values())


def host_usage(cloud: Cloud) -> list[HostUsage]:
    """Every host (the control host first) with every account's instances placed on it
    and what their types take of it. Rows placed before hosts existed are the control
    host's; a store without hosts (never run by `gureum up`) shows this machine."""
    cfg = cloud.config
    with cloud.store.read() as s:
        names = dict(s.execute(select(models.Account.account_id, models.Account.name)).all())
        hosts = {h.host_id: HostUsage(h.name, h.host_id, h.zone, h.state, h.vcpus,
                                      h.memory_mib, cfg.cpu_overcommit, cfg.memory_overcommit)
                 for h in s.scalars(select(Host).order_by(Host.is_control.desc(), Host.name))}
        control = s.scalar(select(Host.host_id).where(Host.is_control.is_(True))) or ""
        if not hosts:
            hosts[""] = HostUsage(socket.gethostname(), "", default_zone(cfg), "active",
                                  cfg.host_vcpus, cfg.host_memory_mib, cfg.cpu_overcommit,
                                  cfg.memory_overcommit)
        rows = s.scalars(select(models.Instance).where(models.Instance.state != "terminated")
                         .order_by(models.Instance.account_id, models.Instance.launch_time))
        for inst in rows:
            kind = CATALOGUE.get(inst.instance_type)
            key = inst.host_id or control
            usage = hosts.get(key) or hosts.setdefault(key, HostUsage(
                key, key, "", "removed", 0, 0, cfg.cpu_overcommit, cfg.memory_overcommit))
            usage.instances.append(InstanceUse(
                inst.account_id, names.get(inst.account_id, "?"), inst.instance_id,
                inst.instance_type, inst.state, kind.vcpus if kind else 0,
                kind.memory_mib if kind else 0))
    return list(hosts.values())
