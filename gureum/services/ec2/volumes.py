"""EBS volumes in the control plane: the limits of each volume type, device names, the
rows of an instance's disks and how the API shows them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2.views import ROOT_DEVICE, tag_list, volume_id
from gureum.store import models
from gureum.store.ebs_models import Snapshot, Volume
from gureum.store.models import utcnow


@dataclass(frozen=True)
class VolumeType:
    min_gib: int
    max_gib: int
    iops: tuple[int, int] | None = None  # settable range
    default_iops: int | None = None
    iops_per_gib: int | None = None  # most IOPS per GiB asked for
    throughput: tuple[int, int] | None = None
    default_throughput: int | None = None


TYPES = {
    "gp3": VolumeType(1, 16384, (3000, 16000), 3000, 500, (125, 1000), 125),
    "gp2": VolumeType(1, 16384),
    "io1": VolumeType(4, 16384, (100, 64000), None, 50),
    "io2": VolumeType(4, 65536, (100, 256000), None, 1000),
    "st1": VolumeType(125, 16384),
    "sc1": VolumeType(125, 16384),
    "standard": VolumeType(1, 1024),
}
DATA_DEVICE = re.compile(r"^/dev/(sd[b-z]|xvd[b-z]|xvd[b-z][a-z]?)$")
LIVE = ("creating", "available", "in-use")


def check_volume_id(volume_id: str) -> None:
    if not ids.is_valid(volume_id, "vol"):
        raise exc.InvalidVolumeMalformed(f'Invalid id: "{volume_id[:64]}" (expecting "vol-...")')


def check_snapshot_id(snapshot_id: str) -> None:
    if not ids.is_valid(snapshot_id, "snap"):
        raise exc.InvalidSnapshotMalformed(f'Invalid id: "{snapshot_id[:64]}" (expecting "snap-...")')


def checked_shape(volume_type: str, size: int, iops: int | None,
                  throughput: int | None) -> tuple[int | None, int | None]:
    """(iops, throughput) stored for a volume of this type and size, or AWS's error."""
    kind = TYPES.get(volume_type)
    if kind is None:
        raise exc.InvalidParameterValue(
            f"Value ({volume_type[:32]}) for parameter volumeType is invalid. Valid values: "
            f"{', '.join(TYPES)}")
    if not kind.min_gib <= size <= kind.max_gib:
        raise exc.InvalidParameterValue(
            f"Volume of {size}GiB is too {'small' if size < kind.min_gib else 'large'} for "
            f"{volume_type}; minimum is {kind.min_gib}GiB, maximum is {kind.max_gib}GiB")
    if iops is not None and kind.iops is None:
        raise exc.InvalidParameterCombination(
            f"The parameter iops is not supported for {volume_type} volumes.")
    if throughput is not None and kind.throughput is None:
        raise exc.InvalidParameterCombination(
            f"The parameter throughput is not supported for {volume_type} volumes.")
    if kind.iops is not None:
        if iops is None:
            if kind.default_iops is None:
                raise exc.MissingParameter(
                    f"The request must contain the parameter iops for {volume_type} volumes")
            iops = kind.default_iops
        low, high = kind.iops
        if not low <= iops <= high:
            raise exc.InvalidParameterValue(
                f"Volume iops of {iops} is outside the range {low}-{high} for {volume_type}")
        if kind.iops_per_gib and iops > max(kind.iops_per_gib * size, low) and iops > (
                kind.default_iops or 0):
            raise exc.InvalidParameterValue(
                f"Iops to volume size ratio of {iops / size:.0f} is too high; maximum is "
                f"{kind.iops_per_gib}")
    elif volume_type == "gp2":
        iops = min(max(100, 3 * size), 16000)  # gp2's baseline, reported, not chosen
    if kind.throughput is not None:
        throughput = throughput or kind.default_throughput
        low, high = kind.throughput
        assert throughput is not None
        if not low <= throughput <= high:
            raise exc.InvalidParameterValue(
                f"Throughput of {throughput} MiB/s is outside the range {low}-{high}")
    return iops, throughput


def check_quota(s: Session, account_id: str, adding_gib: int, quota_gib: int) -> None:
    used = s.scalar(select(func.coalesce(func.sum(Volume.size_gib), 0)).where(
        Volume.account_id == account_id, Volume.state.in_(LIVE))) or 0
    if used + adding_gib > quota_gib:
        raise exc.VolumeLimitExceeded(
            f"You have exceeded your maximum gp3 storage limit of {quota_gib} GiB "
            f"({used} GiB in use, {adding_gib} GiB asked for)")


def own_volume(s: Session, account_id: str, volume_id: str) -> Volume:
    check_volume_id(volume_id)
    row = s.get(Volume, volume_id)
    if row is None or row.account_id != account_id or row.state == "deleting":
        raise exc.InvalidVolumeNotFound(f"The volume '{volume_id}' does not exist.")
    return row


def visible_snapshot(s: Session, account_id: str, snapshot_id: str) -> Snapshot:
    """The account's own snapshot or one shared with it."""
    check_snapshot_id(snapshot_id)
    row = s.get(Snapshot, snapshot_id)
    if row is None or row.state == "deleting" or not (
            row.account_id == account_id or account_id in row.shared_with
            or "all" in row.shared_with):
        raise exc.InvalidSnapshotNotFound(f"The snapshot '{snapshot_id}' does not exist.")
    return row


def root_volume(inst: models.Instance, size_gib: int, delete_on_termination: bool,
                volume_type: str = "gp3", iops: int | None = None,
                throughput: int | None = None) -> Volume:
    """The root disk of a new instance, as a volume (its id is derived from the instance's,
    so that instances made before EBS name the same one)."""
    iops, throughput = checked_shape(volume_type, size_gib, iops, throughput)
    return Volume(volume_id=volume_id(inst.instance_id), account_id=inst.account_id,
                  availability_zone=inst.availability_zone, size_gib=size_gib,
                  volume_type=volume_type, iops=iops, throughput=throughput, state="in-use",
                  is_root=True, instance_id=inst.instance_id, device=ROOT_DEVICE,
                  attach_state="attached", attach_time=utcnow(),
                  delete_on_termination=delete_on_termination, host_id=inst.host_id)


def launch_volume(inst: models.Instance, device: str, size_gib: int, volume_type: str,
                  iops: int | None, throughput: int | None, snapshot_id: str | None,
                  delete_on_termination: bool) -> Volume:
    """A data volume asked for in RunInstances' BlockDeviceMappings: attached from the
    start (the instance waits for it to be made)."""
    return Volume(volume_id=ids.new("vol"), account_id=inst.account_id,
                  availability_zone=inst.availability_zone, size_gib=size_gib,
                  volume_type=volume_type, iops=iops, throughput=throughput,
                  snapshot_id=snapshot_id, state="creating", instance_id=inst.instance_id,
                  device=device, attach_state="attaching", attach_time=utcnow(),
                  delete_on_termination=delete_on_termination, host_id=inst.host_id)


def of_instances(s: Session, instance_ids: list[str]) -> dict[str, list[Volume]]:
    out: dict[str, list[Volume]] = {i: [] for i in instance_ids}
    if not instance_ids:
        return out
    for row in s.scalars(select(Volume).where(Volume.instance_id.in_(instance_ids))):
        if row.instance_id in out:
            out[row.instance_id].append(row)
    for rows in out.values():
        rows.sort(key=lambda v: (not v.is_root, v.device or ""))
    return out


def release_on_termination(s: Session, instance_id: str) -> None:
    """A terminated instance's volumes: deleted when DeleteOnTermination says so (the
    root disk by default), detached and kept otherwise."""
    for row in s.scalars(select(Volume).where(Volume.instance_id == instance_id)):
        if row.delete_on_termination:
            row.state = "deleting"
        else:
            row.state = "available"
        row.instance_id, row.device, row.attach_state, row.attach_time = None, None, None, None


def mappings(inst: models.Instance, rows: list[Volume] | None) -> list[dict[str, Any]]:
    """An instance's BlockDeviceMappings: its volumes, root first."""
    if rows is None:  # made before EBS: its root disk only
        return [{"DeviceName": ROOT_DEVICE, "Ebs": {
            "VolumeId": volume_id(inst.instance_id), "Status": "attached",
            "AttachTime": inst.launch_time, "DeleteOnTermination": True}}]
    return [{"DeviceName": v.device, "Ebs": {
        "VolumeId": v.volume_id, "Status": v.attach_state, "AttachTime": v.attach_time,
        "DeleteOnTermination": v.delete_on_termination}} for v in rows if v.attach_state]


def attachment(v: Volume) -> dict[str, Any]:
    return {"VolumeId": v.volume_id, "InstanceId": v.instance_id, "Device": v.device,
            "State": v.attach_state, "AttachTime": v.attach_time,
            "DeleteOnTermination": v.delete_on_termination}


def view(v: Volume, tags: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VolumeId": v.volume_id, "Size": v.size_gib, "AvailabilityZone": v.availability_zone,
        "State": v.state, "CreateTime": v.created_at, "VolumeType": v.volume_type,
        "Encrypted": False, "MultiAttachEnabled": False, "SnapshotId": v.snapshot_id or "",
        "Attachments": [attachment(v)] if v.attach_state else [],
        "Tags": tag_list(tags) or None,
    }
    if v.iops is not None:
        out["Iops"] = v.iops
    if v.throughput is not None:
        out["Throughput"] = v.throughput
    return out


def filter_fields(v: Volume) -> dict[str, Any]:
    return {"volume-id": v.volume_id, "status": v.state, "size": str(v.size_gib),
            "availability-zone": v.availability_zone, "volume-type": v.volume_type,
            "snapshot-id": v.snapshot_id or "", "encrypted": "false",
            "create-time": v.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "attachment.instance-id": v.instance_id or "", "attachment.device": v.device or "",
            "attachment.status": v.attach_state or "",
            "attachment.delete-on-termination": str(v.delete_on_termination).lower(),
            "multi-attach-enabled": "false"}
