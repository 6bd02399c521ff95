"""EBS volumes: create (empty or from a snapshot), attach, detach, grow, delete. The
handlers record what is wanted; controllers/ebs.py makes the host match (states
creating/attaching/detaching/deleting/modifying are its work list; a commit to these
tables wakes it, see cloud.WAKES)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.hosts import placement, registry
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2 import volumes as ebs
from gureum.services.ec2.handlers import common
from gureum.store.ebs_models import Volume
from gureum.store.models import utcnow

FILTERS = {"volume-id", "status", "size", "availability-zone", "volume-type", "snapshot-id",
           "encrypted", "create-time", "attachment.instance-id", "attachment.device",
           "attachment.status", "attachment.delete-on-termination", "multi-attach-enabled"}


@action("ec2", "CreateVolume")
def create_volume(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    zone = p.get("AvailabilityZone")
    if not zone:
        raise exc.MissingParameter("The request must contain the parameter availabilityZone")
    if zone not in registry.zones(ctx.cloud.store, ctx.cloud.config):
        raise exc.InvalidZoneNotFound(f"The zone '{zone[:64]}' does not exist.")
    if p.get("Encrypted") or p.get("KmsKeyId"):
        raise exc.InvalidParameterValue("Encrypted volumes are not supported by gureum")
    if p.get("MultiAttachEnabled"):
        raise exc.InvalidParameterValue("Multi-Attach is not supported by gureum")
    if p.get("Size") is None and not p.get("SnapshotId"):
        raise exc.MissingParameter("The request must contain the parameter size or snapshotId")
    tags = common.tags_from_specs(p, "volume")
    volume_type = p.get("VolumeType") or "gp2"
    if len(p.get("ClientToken") or "") > 64:
        raise exc.InvalidParameterValue("ClientToken must be at most 64 characters")
    with ctx.cloud.store.write() as s:
        if p.get("ClientToken"):
            done = s.scalar(select(Volume).where(Volume.client_token == p["ClientToken"],
                                                 Volume.account_id == ctx.account_id))
            if done is not None:
                return ebs.view(done, common.tags_of(s, ctx.account_id, [done.volume_id])[done.volume_id])
        size = p.get("Size")
        snapshot_id = p.get("SnapshotId")
        if snapshot_id:
            snap = ebs.visible_snapshot(s, ctx.account_id, snapshot_id)
            if snap.state != "completed":
                raise exc.IncorrectState(f"Snapshot '{snapshot_id}' is not 'completed'")
            if size is None:
                size = snap.volume_size
            elif size < snap.volume_size:
                raise exc.InvalidParameterValue(
                    f"Volume of size {size}GiB is smaller than snapshot '{snapshot_id}', "
                    f"expect size >= {snap.volume_size}GiB")
        assert size is not None
        iops, throughput = ebs.checked_shape(volume_type, size, p.get("Iops"), p.get("Throughput"))
        ebs.check_quota(s, ctx.account_id, size, ctx.cloud.config.volume_quota_gib)
        host_id = placement.volume_host(s, ctx.cloud.control_host_id,
                                        ctx.cloud.availability_zone, zone)
        if host_id is None and zone != ctx.cloud.availability_zone:
            raise exc.InsufficientVolumeCapacity(
                f"There is currently insufficient capacity to serve the request in "
                f"{zone}: no host of that zone is active.")
        row = Volume(volume_id=ids.new("vol"), account_id=ctx.account_id,
                     availability_zone=zone, size_gib=size, volume_type=volume_type, iops=iops,
                     throughput=throughput, snapshot_id=snapshot_id, state="creating",
                     client_token=p.get("ClientToken"), host_id=host_id)
        s.add(row)
        s.flush()
        common.put_tags(s, ctx.account_id, row.volume_id, tags)
        out = ebs.view(row, dict(tags))
    return out


@action("ec2", "DescribeVolumes")
def describe_volumes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for volume_id in p.get("VolumeIds") or []:
        ebs.check_volume_id(volume_id)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(Volume).where(
            Volume.account_id == ctx.account_id, Volume.state != "deleting").order_by(
                Volume.created_at, Volume.volume_id)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="VolumeIds", id_of=lambda v: v.volume_id,
            not_found=lambda i: exc.InvalidVolumeNotFound(f"The volume '{i}' does not exist."),
            filters_allowed=FILTERS, fields=ebs.filter_fields, view=ebs.view,
            result_key="Volumes")


@action("ec2", "DescribeVolumeStatus")
def describe_volume_status(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    def view(v: Volume, _tags: dict[str, str]) -> dict[str, Any]:
        status = "impaired" if v.last_error else "ok"
        return {"VolumeId": v.volume_id, "AvailabilityZone": v.availability_zone,
                "VolumeStatus": {"Status": status, "Details": [
                    {"Name": "io-enabled", "Status": "passed" if status == "ok" else "failed"},
                    {"Name": "io-performance", "Status": "not-applicable"}]},
                "Actions": [], "Events": []}

    for volume_id in p.get("VolumeIds") or []:
        ebs.check_volume_id(volume_id)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(Volume).where(
            Volume.account_id == ctx.account_id, Volume.state.in_(ebs.LIVE)).order_by(
                Volume.created_at, Volume.volume_id)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="VolumeIds", id_of=lambda v: v.volume_id,
            not_found=lambda i: exc.InvalidVolumeNotFound(f"The volume '{i}' does not exist."),
            filters_allowed={"volume-id", "availability-zone", "volume-status.status"},
            fields=lambda v: {"volume-id": v.volume_id, "availability-zone": v.availability_zone,
                              "volume-status.status": "impaired" if v.last_error else "ok"},
            view=view, result_key="VolumeStatuses")


@action("ec2", "AttachVolume")
def attach_volume(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    device = p.get("Device") or ""
    if not ebs.DATA_DEVICE.match(device):
        raise exc.InvalidParameterValue(
            f"Value ({device[:64]}) for parameter device is invalid. {device[:64]} is not a "
            f"valid EBS device name.")
    with ctx.cloud.store.write() as s:
        volume = ebs.own_volume(s, ctx.account_id, p["VolumeId"])
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        if volume.attach_state:
            raise exc.VolumeInUse(f"{volume.volume_id} is already attached to an instance")
        if volume.state != "available":
            raise exc.IncorrectState(
                f"The volume '{volume.volume_id}' is not 'available' (it is '{volume.state}')")
        if inst.state not in ("running", "stopped"):
            raise exc.IncorrectInstanceState(
                f"The instance '{inst.instance_id}' is not 'running' or 'stopped'.")
        if volume.availability_zone != inst.availability_zone:
            raise exc.InvalidVolumeZoneMismatch(
                f"The volume '{volume.volume_id}' is not in the same availability zone as "
                f"instance '{inst.instance_id}'")
        attached = ebs.of_instances(s, [inst.instance_id])[inst.instance_id]
        if any(v.device == device for v in attached):
            raise exc.InvalidParameterValue(f"Attachment point {device} is already in use")
        if sum(not v.is_root for v in attached) >= ctx.cloud.config.max_attachments:
            raise exc.AttachmentLimitExceeded(
                f"The instance '{inst.instance_id}' has the most volumes attached it may have "
                f"({ctx.cloud.config.max_attachments})")
        volume.instance_id, volume.device = inst.instance_id, device
        volume.attach_state, volume.attach_time = "attaching", utcnow()
        volume.state, volume.delete_on_termination, volume.force_detach = "in-use", False, False
        out = ebs.attachment(volume)
    return out


@action("ec2", "DetachVolume")
def detach_volume(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        volume = ebs.own_volume(s, ctx.account_id, p["VolumeId"])
        if not volume.attach_state or volume.instance_id is None:
            raise exc.IncorrectState(f"Volume '{volume.volume_id}' is in the 'available' state.")
        for member, current in (("InstanceId", volume.instance_id), ("Device", volume.device)):
            if p.get(member) and p[member] != current:
                raise exc.InvalidAttachmentNotFound(
                    f"The volume '{volume.volume_id}' is not attached to "
                    f"{p[member][:64]}")
        if volume.is_root:
            raise exc.OperationNotPermitted(
                f"The root volume '{volume.volume_id}' of instance '{volume.instance_id}' "
                f"cannot be detached: gureum keeps an instance's root disk with it")
        volume.attach_state = "detaching"
        volume.force_detach = volume.force_detach or bool(p.get("Force"))
        out = ebs.attachment(volume)
    return out


@action("ec2", "DeleteVolume")
def delete_volume(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        volume = ebs.own_volume(s, ctx.account_id, p["VolumeId"])
        if volume.attach_state:
            raise exc.VolumeInUse(
                f"Volume {volume.volume_id} is currently attached to {volume.instance_id}")
        if volume.state == "creating":
            raise exc.IncorrectState(f"The volume '{volume.volume_id}' is still 'creating'")
        volume.state = "deleting"
        common.delete_tags(s, [volume.volume_id])
    return {}


@action("ec2", "ModifyVolume")
def modify_volume(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        volume = ebs.own_volume(s, ctx.account_id, p["VolumeId"])
        if volume.state not in ("available", "in-use"):
            raise exc.IncorrectState(f"The volume '{volume.volume_id}' is '{volume.state}'")
        if (volume.modification or {}).get("ModificationState") in ("modifying", "optimizing"):
            raise exc.IncorrectModificationState(
                f"Volume {volume.volume_id} is already being modified")
        size = p.get("Size", volume.size_gib)
        volume_type = p.get("VolumeType", volume.volume_type)
        if size < volume.size_gib:
            raise exc.InvalidParameterValue(
                f"New size cannot be smaller than existing size ({volume.size_gib}GiB)")
        keep_iops = volume_type == volume.volume_type and volume_type != "gp2"
        iops, throughput = ebs.checked_shape(
            volume_type, size, p.get("Iops", volume.iops if keep_iops else None),
            p.get("Throughput", volume.throughput if volume_type == volume.volume_type else None))
        if (size, volume_type, iops, throughput) == (volume.size_gib, volume.volume_type,
                                                     volume.iops, volume.throughput):
            raise exc.InvalidParameterValue(
                "New values are the same as the existing ones: no modification requested")
        extra = size - volume.size_gib
        if extra:
            ebs.check_quota(s, ctx.account_id, extra, ctx.cloud.config.volume_quota_gib)
        volume.modification = {
            "VolumeId": volume.volume_id, "ModificationState": "modifying", "Progress": 0,
            "StartTime": utcnow().isoformat(),
            "TargetSize": size, "OriginalSize": volume.size_gib,
            "TargetVolumeType": volume_type, "OriginalVolumeType": volume.volume_type,
            "TargetIops": iops, "OriginalIops": volume.iops,
            "TargetThroughput": throughput, "OriginalThroughput": volume.throughput,
            "TargetMultiAttachEnabled": False, "OriginalMultiAttachEnabled": False,
        }
        volume.size_gib, volume.volume_type, volume.iops, volume.throughput = (
            size, volume_type, iops, throughput)
        out = modification_view(volume.modification)
    return {"VolumeModification": out}


def modification_view(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if v is not None}
    for key in ("StartTime", "EndTime"):
        if key in out:
            out[key] = dt.datetime.fromisoformat(out[key])
    return out


@action("ec2", "DescribeVolumesModifications")
def describe_volumes_modifications(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for volume_id in p.get("VolumeIds") or []:
        ebs.check_volume_id(volume_id)
    with ctx.cloud.store.read() as s:
        rows = [v for v in s.scalars(select(Volume).where(
            Volume.account_id == ctx.account_id, Volume.state != "deleting").order_by(
                Volume.created_at, Volume.volume_id)) if v.modification]
        wanted = p.get("VolumeIds") or []
        for volume_id in wanted:
            ebs.own_volume(s, ctx.account_id, volume_id)  # NotFound when it is not ours
        if wanted:
            rows = [v for v in rows if v.volume_id in wanted]
        return common.describe(
            s, ctx.account_id, {**p, "VolumeIds": None}, rows,
            id_param="VolumeIds", id_of=lambda v: v.volume_id,
            not_found=lambda i: exc.InvalidVolumeNotFound(f"The volume '{i}' does not exist."),
            filters_allowed={"volume-id", "modification-state", "target-size", "target-volume-type",
                             "original-size", "original-volume-type", "start-time"},
            fields=lambda v: {"volume-id": v.volume_id,
                              "modification-state": v.modification["ModificationState"],
                              "target-size": str(v.modification["TargetSize"]),
                              "target-volume-type": v.modification["TargetVolumeType"],
                              "original-size": str(v.modification["OriginalSize"]),
                              "original-volume-type": v.modification["OriginalVolumeType"],
                              "start-time": v.modification["StartTime"]},
            view=lambda v, _t: modification_view(v.modification),
            result_key="VolumesModifications")
