"""Placement: which host runs each instance RunInstances makes.

Filters, then weights, as schedulers do: a host qualifies when it is in the subnet's
zone, `active` (not draining, not lost) and the type fits it (one instance within its
figures times the overcommits; with `GUREUM_PLACEMENT_RESERVES=1` also the sum of what
it already holds). Among those, spread first (fewest instances of the same Auto Scaling
group or placement group), then the most free memory. A `spread` placement group takes
only hosts holding none of its instances; a `cluster` group stays on the host its first
instance got. Nothing left: InsufficientInstanceCapacity, worded as AWS words it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gureum.config import Config
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2.instance_types import CATALOGUE, InstanceType, fits
from gureum.store import models
from gureum.store.autoscaling_models import GroupInstance
from gureum.store.host_models import Host, PlacementGroup

# States whose instances hold a host's vCPUs and memory (a stopped one holds its place).
HOLDING = ("pending", "running", "stopping", "shutting-down")
PLACED = (*HOLDING, "stopped")


@dataclass(frozen=True, slots=True)
class _Host:
    """What placement reads of a host (plain columns: 1,000 ORM objects per decision
    were most of its cost)."""

    host_id: str
    name: str
    vcpus: int
    memory_mib: int


@dataclass(slots=True)
class _Load:
    host: _Host
    vcpus: float = 0
    memory_mib: float = 0
    same: int = 0  # instances of the same ASG / placement group already there


def _loads(s: Session, hosts: list[_Host], control_id: str | None) -> dict[str, _Load]:
    loads = {h.host_id: _Load(h) for h in hosts}
    if not loads:
        return loads
    host_col = func.coalesce(models.Instance.host_id, control_id or "")
    for host_id, itype, count in s.execute(
            select(host_col, models.Instance.instance_type, func.count())
            .where(models.Instance.state.in_(HOLDING), host_col.in_(list(loads)))
            .group_by(host_col, models.Instance.instance_type)):
        t = CATALOGUE.get(itype)
        if t is not None:
            loads[host_id].vcpus += t.vcpus * count
            loads[host_id].memory_mib += t.memory_mib * count
    return loads


def _members(s: Session, control_id: str | None, group: PlacementGroup | None,
             spread_arn: str | None) -> Counter:
    """Per host: how many instances of this placement group or Auto Scaling group it has."""
    host_col = func.coalesce(models.Instance.host_id, control_id or "")
    if group is not None:
        where: Any = models.Instance.placement_group_id == group.group_id
        query = select(host_col, func.count()).where(where, models.Instance.state.in_(PLACED))
    elif spread_arn is not None:
        query = (select(host_col, func.count()).join(
            GroupInstance, GroupInstance.instance_id == models.Instance.instance_id)
            .where(GroupInstance.group_arn == spread_arn, models.Instance.state.in_(PLACED)))
    else:
        return Counter()
    return Counter(dict(s.execute(query.group_by(host_col)).all()))


def _room(cfg: Config, load: _Load, t: InstanceType) -> bool:
    h = load.host
    if not fits(t, h.vcpus, h.memory_mib, cfg.cpu_overcommit, cfg.memory_overcommit):
        return False
    if not cfg.placement_reserves:
        return True
    return (load.vcpus + t.vcpus <= h.vcpus * cfg.cpu_overcommit
            and load.memory_mib + t.memory_mib <= h.memory_mib * cfg.memory_overcommit)


def capacity_message(instance_type: str, zone: str, elsewhere: list[str]) -> str:
    text = (f"We currently do not have sufficient {instance_type} capacity in the "
            f"Availability Zone you requested ({zone}). Our system will be working on "
            "provisioning additional capacity.")
    if elsewhere:
        text += (f" You can currently get {instance_type} capacity by not specifying an "
                 f"Availability Zone in your request or choosing {', '.join(elsewhere)}.")
    return text


def place(s: Session, cfg: Config, control_id: str | None, zone: str, instance_type: str,
          min_count: int, max_count: int, group: PlacementGroup | None = None,
          spread_arn: str | None = None) -> list[str]:
    """Host ids for up to `max_count` instances (at least `min_count`, else
    InsufficientInstanceCapacity), chosen one at a time so a batch spreads too."""
    t = CATALOGUE[instance_type]
    hosts = [_Host(*row) for row in s.execute(
        select(Host.host_id, Host.name, Host.vcpus, Host.memory_mib).where(
            Host.zone == zone, Host.state == "active"))]
    loads = _loads(s, hosts, control_id)
    members = _members(s, control_id, group, spread_arn)
    for host_id, load in loads.items():
        load.same = members.get(host_id, 0)
    cluster_hosts = {h for h, n in members.items() if n} if (
        group is not None and group.strategy == "cluster") else set()
    chosen: list[str] = []
    for _ in range(max_count):
        candidates = [load for load in loads.values() if _room(cfg, load, t)]
        if group is not None and group.strategy == "spread":
            candidates = [load for load in candidates if load.same == 0]
        if cluster_hosts:
            candidates = [load for load in candidates if load.host.host_id in cluster_hosts]
        if not candidates:
            break
        best = min(candidates, key=lambda load: (
            load.same, -(load.host.memory_mib * cfg.memory_overcommit - load.memory_mib),
            load.host.name))
        best.vcpus += t.vcpus
        best.memory_mib += t.memory_mib
        best.same += 1
        if group is not None and group.strategy == "cluster":
            cluster_hosts = {best.host.host_id}
        chosen.append(best.host.host_id)
    if len(chosen) < min_count:
        raise exc.InsufficientInstanceCapacity(
            capacity_message(instance_type, zone, _zones_with_room(s, cfg, t, zone)))
    return chosen


def _zones_with_room(s: Session, cfg: Config, t: InstanceType, zone: str) -> list[str]:
    found = set()
    for h in s.scalars(select(Host).where(Host.zone != zone, Host.state == "active")):
        if fits(t, h.vcpus, h.memory_mib, cfg.cpu_overcommit, cfg.memory_overcommit):
            found.add(h.zone)
    return sorted(found)


def any_host_fits(s: Session, cfg: Config, instance_type: str, joined_only: bool = False) -> bool:
    t = CATALOGUE[instance_type]
    query = select(Host).where(or_(Host.state == "active", Host.state == "draining"))
    if joined_only:
        query = query.where(Host.is_control.is_(False))
    return any(fits(t, h.vcpus, h.memory_mib, cfg.cpu_overcommit, cfg.memory_overcommit)
               for h in s.scalars(query))


def volume_host(s: Session, control_id: str | None, control_zone: str,
                zone: str) -> str | None:
    """Where a new volume of `zone` lives until it is attached (attaching moves it to its
    instance's host): the control host in its own zone, else the zone's active host with
    the most disk. None: the control host; no host in the zone: the caller's error."""
    if zone == control_zone:
        return control_id
    return s.scalar(select(Host.host_id).where(Host.zone == zone, Host.state == "active")
                    .order_by(Host.disk_gib.desc(), Host.name).limit(1))
