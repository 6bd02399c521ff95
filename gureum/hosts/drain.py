"""Draining a host moves its stopped instances away: their disks (root and data volumes)
go to a host of the same zone that placement picks, the root disk is adopted there (its
files shifted to the new slot's uid range), and the instance's row then names its new
host and slot, so its next start runs there. Running instances stay (as on AWS, a
drain never stops anything); a stopped one started meanwhile keeps its old host.

One instance per call: the hosts controller calls it once a pass, after marking lost
hosts, so a large disk never delays that."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from gureum.hosts import moves, placement
from gureum.services.ec2 import allocation
from gureum.services.ec2 import exceptions as exc
from gureum.store import models
from gureum.store.ebs_models import Volume
from gureum.store.host_models import Host

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.hosts")


def _next_stopped(cloud: Cloud) -> tuple[models.Instance, str] | None:
    """A stopped instance of a draining host, with a host to move it to."""
    with cloud.store.read() as s:
        for host in s.scalars(select(Host).where(Host.state == "draining").order_by(Host.name)):
            on_host = models.Instance.host_id == host.host_id
            if host.is_control:
                on_host = or_(on_host, models.Instance.host_id.is_(None))
            for inst in s.scalars(select(models.Instance).where(
                    on_host, models.Instance.state == "stopped").order_by(
                    models.Instance.instance_id)):
                try:
                    target = placement.place(s, cloud.config, cloud.control_host_id,
                                             inst.availability_zone, inst.instance_type, 1, 1)
                except exc.InsufficientInstanceCapacity:
                    continue  # stays until a host of its zone has room
                s.expunge(inst)
                return inst, target[0]
    return None


def move_one_stopped(cloud: Cloud) -> str | None:
    """Moves one stopped instance off a draining host; returns its id, or None."""
    found = _next_stopped(cloud)
    if found is None:
        return None
    inst, target = found
    source = inst.host_id
    with cloud.store.read() as s:
        volumes = [(v.volume_id, v.is_root) for v in s.scalars(
            select(Volume).where(Volume.instance_id == inst.instance_id))]
        slot = next(allocation.free_slots(s, target, target == cloud.control_host_id))
    for volume_id, _ in volumes:
        moves.move_stored(cloud, volume_id, source, target)
    for volume_id, is_root in volumes:
        if is_root:
            cloud.agent_for(target).adopt_root_disk(volume_id, slot)
    with cloud.store.write() as s:
        row = s.get(models.Instance, inst.instance_id)
        taken = slot not in set(allocation.free_slots(s, target,
                                                      target == cloud.control_host_id))
        moved = row is not None and row.state == "stopped" and row.host_id == source \
            and not taken
        if moved:
            assert row is not None
            row.host_id, row.slot = target, slot
            for v in s.scalars(select(Volume).where(Volume.instance_id == inst.instance_id)):
                v.host_id = target
    stale = source if moved else target  # started meanwhile, or the slot went: try again
    for volume_id, _ in volumes:
        moves.drop_source(cloud, volume_id, stale)
    if not moved:
        return None
    cloud.agent_for(source).sweep([inst.instance_id])  # what else it had there
    log.info("drain: %s moved from host %s to host %s (slot %d)", inst.instance_id,
             cloud.agents.key(source), target, slot)
    return inst.instance_id
