"""EBS snapshots. A snapshot is taken during the request (a frozen reflink: milliseconds),
so it holds exactly what the volume held when the call was made, although it is shown
`pending` until the EBS controller confirms it, as EC2 shows it."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from gureum.agent.contract import SnapshotRequest
from gureum.api.dispatch import RequestContext, action
from gureum.errors import AgentUnavailable, HostError
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids, images
from gureum.services.ec2 import volumes as ebs
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import tag_list
from gureum.store import models
from gureum.store.ebs_models import Snapshot, Volume

log = logging.getLogger("gureum.ebs")
FILTERS = {"snapshot-id", "volume-id", "status", "owner-id", "owner-alias", "description",
           "progress", "start-time", "volume-size", "encrypted", "storage-tier"}


def view(snap: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "SnapshotId": snap.snapshot_id, "VolumeId": snap.volume_id, "State": snap.state,
        "StartTime": snap.started_at, "Progress": "100%" if snap.state == "completed" else "0%",
        "OwnerId": snap.account_id, "Description": snap.description,
        "VolumeSize": snap.volume_size, "Encrypted": False, "StorageTier": "standard",
        "StateMessage": snap.last_error if snap.state == "error" else None,
        "Tags": tag_list(tags) or None,
    }


def _fields(snap: Snapshot) -> dict[str, Any]:
    return {"snapshot-id": snap.snapshot_id, "volume-id": snap.volume_id,
            "status": snap.state, "owner-id": snap.account_id, "owner-alias": "",
            "description": snap.description, "progress": view(snap, {})["Progress"],
            "start-time": snap.started_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "volume-size": str(snap.volume_size), "encrypted": "false",
            "storage-tier": "standard"}


def take(ctx: RequestContext, snapshots: list[Snapshot]) -> None:
    """Now, on the host (the rows are committed as `pending` first, which wakes the EBS
    controller to confirm them). A failure marks them `error`; an agent out of reach
    leaves them to the EBS controller."""
    if not snapshots:
        return
    requests = [SnapshotRequest(sn.source_snapshot_id or sn.volume_id, sn.snapshot_id)
                for sn in snapshots]
    try:  # on the host holding the volumes (one instance's, or one snapshot's)
        ctx.cloud.agent_for(snapshots[0].host_id).snapshot_volumes(requests)
    except AgentUnavailable as err:
        log.info("snapshots wait for the agent: %s", err)
    except HostError as err:
        with ctx.cloud.store.write() as s:
            for sn in snapshots:
                row = s.get(Snapshot, sn.snapshot_id)
                if row is not None:
                    row.state, row.last_error = "error", str(err)[:4000]


def new_snapshot(s: Any, account_id: str, volume: Volume, description: str,
                 batch: str | None = None) -> Snapshot:
    if volume.state not in ("available", "in-use"):
        raise exc.IncorrectState(f"The volume '{volume.volume_id}' is '{volume.state}'")
    parent = None
    if volume.is_root and volume.instance_id:
        inst = s.get(models.Instance, volume.instance_id)
        parent = inst.image_id if inst is not None else None
    snap = Snapshot(snapshot_id=ids.new("snap"), account_id=account_id,
                    volume_id=volume.volume_id, volume_size=volume.size_gib, state="pending",
                    description=description, batch=batch, parent_image_id=parent,
                    host_id=volume.host_id)
    s.add(snap)
    return snap


@action("ec2", "CreateSnapshot")
def create_snapshot(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = common.tags_from_specs(p, "snapshot")
    with ctx.cloud.store.write() as s:
        volume = ebs.own_volume(s, ctx.account_id, p["VolumeId"])
        snap = new_snapshot(s, ctx.account_id, volume, p.get("Description") or "")
        s.flush()
        common.put_tags(s, ctx.account_id, snap.snapshot_id, tags)
        out = view(snap, dict(tags))
    take(ctx, [snap])
    return out


@action("ec2", "CreateSnapshots")
def create_snapshots(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    spec = p.get("InstanceSpecification") or {}
    tags = common.tags_from_specs(p, "snapshot")
    excluded = set(spec.get("ExcludeDataVolumeIds") or [])
    with ctx.cloud.store.write() as s:
        inst = common.instances_by_id(s, ctx.account_id, [spec.get("InstanceId", "")])[0]
        rows = ebs.of_instances(s, [inst.instance_id])[inst.instance_id]
        chosen = [v for v in rows if v.volume_id not in excluded
                  and not (v.is_root and spec.get("ExcludeBootVolume"))]
        if not chosen:
            raise exc.InvalidParameterValue(
                f"The instance '{inst.instance_id}' has no volume left to snapshot")
        batch = ids.new("batch")[:32]
        snaps = []
        for volume in chosen:
            snap = new_snapshot(s, ctx.account_id, volume, p.get("Description") or "", batch)
            s.flush()
            own = list(tags)
            if p.get("CopyTagsFromSource") == "volume":
                own += list(common.tags_of(s, ctx.account_id, [volume.volume_id])[volume.volume_id].items())
            common.put_tags(s, ctx.account_id, snap.snapshot_id, own)
            snaps.append((snap, dict(own), volume))
        out = [{"SnapshotId": sn.snapshot_id, "VolumeId": sn.volume_id, "State": sn.state,
                "StartTime": sn.started_at, "Progress": "0%", "OwnerId": sn.account_id,
                "Description": sn.description, "VolumeSize": sn.volume_size,
                "Encrypted": False, "Tags": tag_list(t) or None}
               for sn, t, _ in snaps]
    take(ctx, [sn for sn, _, _ in snaps])
    return {"Snapshots": out}


def _visible(sn: Snapshot, account_id: str) -> bool:
    return sn.account_id == account_id or account_id in sn.shared_with or "all" in sn.shared_with


@action("ec2", "DescribeSnapshots")
def describe_snapshots(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for snapshot_id in p.get("SnapshotIds") or []:
        ebs.check_snapshot_id(snapshot_id)
    owners = set(p.get("OwnerIds") or [])
    restorable = set(p.get("RestorableByUserIds") or [])
    with ctx.cloud.store.read() as s:
        rows = [sn for sn in s.scalars(select(Snapshot).where(
            Snapshot.state != "deleting").order_by(Snapshot.started_at, Snapshot.snapshot_id))
            if _visible(sn, ctx.account_id)]
        if owners:
            rows = [sn for sn in rows if sn.account_id in owners
                    or ("self" in owners and sn.account_id == ctx.account_id)]
        if restorable:
            rows = [sn for sn in rows if any(
                user in sn.shared_with or (user in ("self", ctx.account_id)
                                           and _visible(sn, ctx.account_id))
                for user in restorable)]
        return common.describe(
            s, ctx.account_id, p, rows, id_param="SnapshotIds", id_of=lambda sn: sn.snapshot_id,
            not_found=lambda i: exc.InvalidSnapshotNotFound(f"The snapshot '{i}' does not exist."),
            filters_allowed=FILTERS, fields=_fields, view=view, result_key="Snapshots")


def own_snapshot(s: Any, account_id: str, snapshot_id: str) -> Snapshot:
    snap = ebs.visible_snapshot(s, account_id, snapshot_id)
    if snap.account_id != account_id:
        raise exc.AuthFailure(f"Not authorized for snapshot {snapshot_id}")
    return snap


@action("ec2", "DeleteSnapshot")
def delete_snapshot(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        snap = own_snapshot(s, ctx.account_id, p["SnapshotId"])
        user = images.user_of_snapshot(s, snap.snapshot_id)
        if user is not None:
            raise exc.InvalidSnapshotInUse(
                f"The snapshot {snap.snapshot_id} is currently in use by {user}")
        snap.state = "deleting"
        common.delete_tags(s, [snap.snapshot_id])
    return {}


@action("ec2", "CopySnapshot")
def copy_snapshot(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    region = p.get("SourceRegion")
    if region and region != ctx.cloud.config.region:
        raise exc.InvalidParameterValue(f"Source region {region[:32]} is not this cloud's region "
                                        f"({ctx.cloud.config.region})")
    if p.get("Encrypted") or p.get("KmsKeyId"):
        raise exc.InvalidParameterValue("Encrypted snapshots are not supported by gureum")
    tags = common.tags_from_specs(p, "snapshot")
    with ctx.cloud.store.write() as s:
        source = ebs.visible_snapshot(s, ctx.account_id, p["SourceSnapshotId"])
        if source.state != "completed":
            raise exc.IncorrectState(f"Snapshot '{source.snapshot_id}' is not 'completed'")
        copy = Snapshot(snapshot_id=ids.new("snap"), account_id=ctx.account_id,
                        volume_id=source.volume_id, volume_size=source.volume_size,
                        state="pending", description=p.get("Description") or source.description,
                        source_snapshot_id=source.snapshot_id,
                        parent_image_id=source.parent_image_id, host_id=source.host_id)
        s.add(copy)
        s.flush()
        common.put_tags(s, ctx.account_id, copy.snapshot_id, tags)
    take(ctx, [copy])
    return {"SnapshotId": copy.snapshot_id, "Tags": tag_list(dict(tags)) or None}


def permissions_view(shared: list[str]) -> list[dict[str, str]]:
    return [{"Group": "all"} if who == "all" else {"UserId": who} for who in shared]


def changed_permissions(current: list[str], p: dict[str, Any], member: str,
                        account_id: str) -> list[str]:
    """Apply a launch/createVolume permission change (Add/Remove lists, or OperationType
    with UserIds and UserGroups) to the list of account ids ("all": everyone)."""
    change = p.get(member) or {}
    add = [_who(x) for x in change.get("Add") or []]
    remove = [_who(x) for x in change.get("Remove") or []]
    operation = p.get("OperationType")
    listed = list(p.get("UserIds") or []) + list(p.get("UserGroups") or p.get("GroupNames") or [])
    if operation == "add":
        add += listed
    elif operation == "remove":
        remove += listed
    for who in add + remove:
        if who != "all" and not (len(who) == 12 and who.isdigit()):
            raise exc.InvalidUserIDMalformed(f"User ID '{who[:32]}' is invalid")
    out = [who for who in current if who not in remove]
    out += [who for who in add if who not in out and who != account_id]
    return out


def _who(item: dict[str, Any]) -> str:
    if item.get("Group"):
        if item["Group"] != "all":
            raise exc.InvalidParameterValue(f"Group '{item['Group'][:32]}' is invalid: only 'all'")
        return "all"
    return str(item.get("UserId") or "")


@action("ec2", "ModifySnapshotAttribute")
def modify_snapshot_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Attribute", "createVolumePermission") != "createVolumePermission":
        raise exc.InvalidParameterValue(f"Attribute {p['Attribute']} cannot be modified")
    with ctx.cloud.store.write() as s:
        snap = own_snapshot(s, ctx.account_id, p["SnapshotId"])
        snap.shared_with = changed_permissions(list(snap.shared_with), p,
                                               "CreateVolumePermission", ctx.account_id)
    return {}


@action("ec2", "ResetSnapshotAttribute")
def reset_snapshot_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        snap = own_snapshot(s, ctx.account_id, p["SnapshotId"])
        snap.shared_with = []
    return {}


@action("ec2", "DescribeSnapshotAttribute")
def describe_snapshot_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    attribute = p.get("Attribute")
    with ctx.cloud.store.read() as s:
        snap = own_snapshot(s, ctx.account_id, p["SnapshotId"])
        if attribute == "createVolumePermission":
            return {"SnapshotId": snap.snapshot_id,
                    "CreateVolumePermissions": permissions_view(list(snap.shared_with))}
        if attribute == "productCodes":
            return {"SnapshotId": snap.snapshot_id, "ProductCodes": []}
    raise exc.InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid")
