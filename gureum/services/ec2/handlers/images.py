"""Images (AMIs): the built-in ones, and accounts' own made from instances
(CreateImage), from snapshots (RegisterImage) or from other images (CopyImage). A new
image is `pending` until the EBS controller has built its root on the host."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids, images
from gureum.services.ec2 import volumes as ebs
from gureum.services.ec2.handlers import common, snapshots
from gureum.services.ec2.views import ROOT_DEVICE, tag_list
from gureum.store import models
from gureum.store.ebs_models import Snapshot

FILTERS = {"image-id", "name", "owner-id", "owner-alias", "state", "architecture", "is-public",
           "image-type", "root-device-type", "virtualization-type", "platform-details",
           "description", "hypervisor", "root-device-name", "block-device-mapping.snapshot-id",
           "block-device-mapping.volume-size", "block-device-mapping.device-name",
           "block-device-mapping.volume-type", "creation-date", "ena-support",
           "block-device-mapping.delete-on-termination", "block-device-mapping.encrypted"}


def _owner_matches(image: models.Image, owners: list[str], account_id: str) -> bool:
    for owner in owners:
        if owner == "self" and image.owner_id == account_id:
            return True
        if owner in (image.owner_id, image.owner_alias):
            return True
        if owner == "amazon" and image.account_id is None:  # the cloud's own images
            return True
    return False


def _executable_by(image: models.Image, users: list[str], account_id: str) -> bool:
    for user in users:
        who = account_id if user == "self" else user
        if user == "all" and image.public:
            return True
        if image.public or who in (image.shared_with or []) or image.owner_id == who:
            return True
    return False


def view(image: models.Image, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "ImageId": image.image_id, "Name": image.name, "Description": image.description,
        "OwnerId": image.owner_id, "ImageOwnerAlias": image.owner_alias,
        "State": image.state, "Public": image.public, "Architecture": "x86_64",
        "ImageType": "machine", "RootDeviceType": "ebs", "RootDeviceName": ROOT_DEVICE,
        "VirtualizationType": "hvm", "Hypervisor": "xen", "EnaSupport": True,
        "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances",
        "CreationDate": image.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "ImageLocation": f"{image.owner_alias or image.owner_id}/{image.name}",
        "BlockDeviceMappings": [{"DeviceName": ROOT_DEVICE, "Ebs": {
            "VolumeSize": image.root_size_gib, "VolumeType": "gp3",
            "DeleteOnTermination": True, "Encrypted": False,
            **({"SnapshotId": image.root_snapshot_id} if image.root_snapshot_id else {})}}] + [
            {"DeviceName": m["DeviceName"], "Ebs": {
                **{k: v for k, v in m.items() if k != "DeviceName" and v is not None},
                "Encrypted": False}} for m in image.data_mappings or []],
        "StateReason": {"Code": "Server.InternalError", "Message": image.last_error}
        if image.state == "failed" else None,
        "Tags": tag_list(tags) or None,
    }


def _fields(image: models.Image) -> dict[str, Any]:
    return {"image-id": image.image_id, "name": image.name, "owner-id": image.owner_id,
            "owner-alias": image.owner_alias or "", "state": image.state,
            "architecture": "x86_64", "is-public": image.public, "image-type": "machine",
            "root-device-type": "ebs", "virtualization-type": "hvm",
            "platform-details": "Linux/UNIX", "description": image.description,
            "hypervisor": "xen", "root-device-name": ROOT_DEVICE,
            "block-device-mapping.snapshot-id": image.root_snapshot_id or "",
            "block-device-mapping.volume-size": str(image.root_size_gib),
            "block-device-mapping.device-name": ROOT_DEVICE,
            "block-device-mapping.volume-type": "gp3",
            "block-device-mapping.delete-on-termination": "true",
            "block-device-mapping.encrypted": "false", "ena-support": "true",
            "creation-date": image.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}


@action("ec2", "DescribeImages")
def describe_images(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    image_ids = p.get("ImageIds") or []
    for image_id in image_ids:
        ids.check_image_id(image_id)
    if image_ids and p.get("MaxResults") is not None:
        raise exc.InvalidParameterCombination(
            "The parameter ImageIds cannot be used with the parameter MaxResults")
    with ctx.cloud.store.read() as s:
        # By name: the built-in default image (a hash after "gureum-debian-12-") lists
        # before its systemd sibling, and tests and scripts take the first.
        rows = [i for i in s.scalars(select(models.Image).order_by(
            models.Image.name, models.Image.image_id)) if images.visible(i, ctx.account_id)]
        if not image_ids:  # public images of other accounts only when asked for by owner
            rows = [i for i in rows if i.account_id in (None, ctx.account_id)
                    or ctx.account_id in (i.shared_with or []) or p.get("Owners")
                    or p.get("ExecutableUsers")]
        if p.get("Owners"):
            rows = [i for i in rows if _owner_matches(i, p["Owners"], ctx.account_id)]
        if p.get("ExecutableUsers"):
            rows = [i for i in rows if _executable_by(i, p["ExecutableUsers"], ctx.account_id)]
        return common.describe(
            s, ctx.account_id, p, rows, id_param="ImageIds", id_of=lambda i: i.image_id,
            not_found=lambda i: exc.InvalidAMIIDNotFound(f"The image id '[{i}]' does not exist"),
            filters_allowed=FILTERS, fields=_fields, view=view, result_key="Images")


def _tags_by_type(p: dict[str, Any], allowed: set[str]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {kind: [] for kind in allowed}
    for spec in p.get("TagSpecifications") or []:
        kind = spec.get("ResourceType")
        if kind not in allowed:
            raise exc.InvalidParameterValue(
                f"'{kind}' is not a valid taggable resource type for this operation.")
        out[kind] += common.validate_tags(spec.get("Tags") or [])
    return out


def _unique_name(s: Any, account_id: str, name: str) -> None:
    taken = s.scalar(select(models.Image.image_id).where(
        models.Image.account_id == account_id, models.Image.name == name,
        models.Image.state.in_(images.SHOWN)).limit(1))
    if taken is not None:
        raise exc.InvalidAMINameDuplicate(f"AMI name {name} is already in use by AMI {taken}")


def _new_image(ctx: RequestContext, name: str, description: str, size: int,
               snapshot_id: str | None, state: str = "pending", rootfs: str = "",
               source_instance: str | None = None, init_system: str = "tini") -> models.Image:
    """`init_system`: the parent image's (an image of a systemd instance boots systemd)."""
    return models.Image(image_id=ids.new("ami"), name=name, owner_id=ctx.account_id,
                        init_system=init_system,
                        owner_alias=None, description=description, rootfs=rootfs, state=state,
                        public=False, account_id=ctx.account_id, shared_with=[],
                        root_snapshot_id=snapshot_id, source_instance_id=source_instance,
                        root_size_gib=size)


@action("ec2", "CreateImage")
def create_image(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = images.check_name(p.get("Name"))
    tags = _tags_by_type(p, {"image", "snapshot"})
    with ctx.cloud.store.write() as s:
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        if inst.state not in ("running", "stopped"):
            raise exc.IncorrectInstanceState(
                f"The instance '{inst.instance_id}' is not in a state from which it can be "
                f"imaged (it is '{inst.state}')")
        _unique_name(s, ctx.account_id, name)
        disks = ebs.of_instances(s, [inst.instance_id])[inst.instance_id]
        root = next((v for v in disks if v.is_root), None)
        left_out = {m.get("DeviceName") for m in p.get("BlockDeviceMappings") or []
                    if m.get("NoDevice") is not None}
        data = [v for v in disks if not v.is_root and v.attach_state == "attached"
                and v.device not in left_out]
        if root is None:
            raise exc.UnsupportedOperation(
                f"The instance '{inst.instance_id}' was made before gureum kept root disks as "
                f"volumes; it cannot be imaged")
        parent = s.get(models.Image, inst.image_id)
        image = _new_image(ctx, name, p.get("Description") or "", root.size_gib, None,
                           source_instance=inst.instance_id,
                           init_system=parent.init_system if parent else "tini")
        # Every volume at one instant (one batch, frozen together), as EC2 images them.
        batch = ids.new("batch")[:32]
        made = [snapshots.new_snapshot(
            s, ctx.account_id, volume,
            f"Created by CreateImage({inst.instance_id}) for {image.image_id}", batch)
            for volume in [root, *data]]
        snap = made[0]
        image.root_snapshot_id = snap.snapshot_id
        image.data_mappings = [
            {"DeviceName": volume.device, "SnapshotId": taken.snapshot_id,
             "VolumeSize": volume.size_gib, "VolumeType": volume.volume_type,
             "DeleteOnTermination": volume.delete_on_termination}
            for volume, taken in zip(data, made[1:], strict=True)]
        s.add(image)
        s.flush()
        common.put_tags(s, ctx.account_id, image.image_id, tags["image"])
        for taken in made:
            common.put_tags(s, ctx.account_id, taken.snapshot_id, tags["snapshot"])
        reboot = inst.state == "running" and not p.get("NoReboot")
    snapshots.take(ctx, made)
    if reboot:
        # As EC2 does without NoReboot. The disk was frozen and flushed for the snapshot,
        # so the image is consistent whatever; the reboot is what users expect to see.
        with ctx.cloud.store.write() as s:
            row = s.get(models.Instance, p["InstanceId"])
            if row is not None and row.state == "running":
                row.reboot_requested += 1
    return {"ImageId": image.image_id}


@action("ec2", "RegisterImage")
def register_image(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = images.check_name(p.get("Name"))
    if p.get("ImageLocation"):
        raise exc.InvalidParameterValue(
            "Images from S3 manifests are not supported: register from a snapshot, or use "
            "`gureum image import`")
    if p.get("Architecture", "x86_64") != "x86_64":
        raise exc.InvalidParameterValue(f"Architecture {p['Architecture']} is not supported "
                                        f"here: only x86_64")
    root_device = p.get("RootDeviceName") or ROOT_DEVICE
    mapping = next((m for m in p.get("BlockDeviceMappings") or []
                    if m.get("DeviceName") == root_device), None)
    snapshot_id = ((mapping or {}).get("Ebs") or {}).get("SnapshotId")
    if not snapshot_id:
        raise exc.InvalidBlockDeviceMapping(
            f"The root device {root_device} needs a block device mapping with a SnapshotId")
    tags = _tags_by_type(p, {"image"})
    with ctx.cloud.store.write() as s:
        snap = ebs.visible_snapshot(s, ctx.account_id, snapshot_id)
        if snap.state != "completed":
            raise exc.IncorrectState(f"Snapshot '{snapshot_id}' is not 'completed'")
        _unique_name(s, ctx.account_id, name)
        size = (mapping or {}).get("Ebs", {}).get("VolumeSize") or snap.volume_size
        if size < snap.volume_size:
            raise exc.InvalidBlockDeviceMapping(
                f"Volume of size {size}GB is smaller than snapshot '{snapshot_id}', expect "
                f"size >= {snap.volume_size}GB")
        parent = s.get(models.Image, snap.parent_image_id) if snap.parent_image_id else None
        image = _new_image(ctx, name, p.get("Description") or "", size, snapshot_id,
                           init_system=parent.init_system if parent else "tini")
        image.data_mappings = _registered_data(s, ctx.account_id, p, root_device)
        s.add(image)
        s.flush()
        common.put_tags(s, ctx.account_id, image.image_id, tags["image"])
    return {"ImageId": image.image_id}


def _registered_data(s: Any, account_id: str, p: dict[str, Any],
                     root_device: str) -> list[dict[str, Any]]:
    """RegisterImage's other EBS mappings: volumes its instances start with."""
    out = []
    for mapping in p.get("BlockDeviceMappings") or []:
        device, disk = mapping.get("DeviceName") or "", mapping.get("Ebs")
        if device == root_device or not disk or mapping.get("NoDevice") is not None:
            continue
        if not ebs.DATA_DEVICE.match(device):
            raise exc.InvalidBlockDeviceMapping(f"Invalid device name {device[:64]}")
        if disk.get("SnapshotId"):
            taken = ebs.visible_snapshot(s, account_id, disk["SnapshotId"])
            if taken.state != "completed":
                raise exc.IncorrectState(f"Snapshot '{taken.snapshot_id}' is not 'completed'")
        elif not disk.get("VolumeSize"):
            raise exc.InvalidBlockDeviceMapping(
                f"The device {device} needs a VolumeSize or a SnapshotId")
        out.append({"DeviceName": device, "SnapshotId": disk.get("SnapshotId"),
                    "VolumeSize": disk.get("VolumeSize"),
                    "VolumeType": disk.get("VolumeType") or "gp3",
                    "DeleteOnTermination": disk.get("DeleteOnTermination", True)})
    return out


def own_image(s: Any, account_id: str, image_id: str) -> models.Image:
    ids.check_image_id(image_id)
    image = s.get(models.Image, image_id)
    if image is None or not images.visible(image, account_id):
        raise exc.InvalidAMIIDNotFound(f"The image id '[{image_id}]' does not exist")
    if image.account_id != account_id:
        raise exc.AuthFailure(f"Not authorized for image:{image_id}")
    return image


@action("ec2", "DeregisterImage")
def deregister_image(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        image = own_image(s, ctx.account_id, p["ImageId"])
        image.state = "deregistered"
        common.delete_tags(s, [image.image_id])
        if p.get("DeleteAssociatedSnapshots"):
            for snapshot_id in images.snapshots_of(image):
                snap = s.get(Snapshot, snapshot_id)
                if snap is not None and snap.account_id == ctx.account_id and \
                        images.user_of_snapshot(s, snapshot_id) is None:
                    snap.state = "deleting"
    return {"Return": True}


@action("ec2", "CopyImage")
def copy_image(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = images.check_name(p.get("Name"))
    region = p.get("SourceRegion")
    if region and region != ctx.cloud.config.region:
        raise exc.InvalidParameterValue(f"Source region {region[:32]} is not this cloud's region")
    if p.get("Encrypted") or p.get("KmsKeyId"):
        raise exc.InvalidParameterValue("Encrypted images are not supported by gureum")
    tags = _tags_by_type(p, {"image", "snapshot"})
    copied_snapshot = None
    with ctx.cloud.store.write() as s:
        source = images.launchable(s.get(models.Image, p.get("SourceImageId", "")),
                                   ctx.account_id, p.get("SourceImageId", ""))
        _unique_name(s, ctx.account_id, name)
        # An image's root never changes: the copy shares it, and its own root snapshot
        # (when the source has one) is a reflinked copy.
        image = _new_image(ctx, name, p.get("Description") or source.description,
                           source.root_size_gib, None, state="available", rootfs=source.rootfs,
                           init_system=source.init_system)
        image.data_mappings = list(source.data_mappings or [])  # the same snapshots
        if source.root_snapshot_id:
            origin = s.get(Snapshot, source.root_snapshot_id)
            if origin is not None:
                copied_snapshot = Snapshot(
                    snapshot_id=ids.new("snap"), account_id=ctx.account_id,
                    volume_id=origin.volume_id, volume_size=origin.volume_size,
                    state="pending", source_snapshot_id=origin.snapshot_id,
                    parent_image_id=origin.parent_image_id, host_id=origin.host_id,
                    description=f"Copied for DestinationAmi {image.image_id} from SourceAmi "
                                f"{source.image_id} for SourceSnapshot {origin.snapshot_id}")
                s.add(copied_snapshot)
                image.root_snapshot_id = copied_snapshot.snapshot_id
        s.add(image)
        s.flush()
        source_tags = common.tags_of(s, ctx.account_id, [source.image_id])[source.image_id]
        common.put_tags(s, ctx.account_id, image.image_id, tags["image"] + (
            list(source_tags.items()) if p.get("CopyImageTags") else []))
    if copied_snapshot is not None:
        snapshots.take(ctx, [copied_snapshot])
    return {"ImageId": image.image_id}


@action("ec2", "ModifyImageAttribute")
def modify_image_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        image = own_image(s, ctx.account_id, p["ImageId"])
        attribute = p.get("Attribute")
        if (p.get("Description") or {}).get("Value") is not None or attribute == "description":
            image.description = (p.get("Description") or {}).get("Value", p.get("Value") or "")
            return {}
        if attribute not in (None, "launchPermission"):
            raise exc.InvalidParameterValue(
                f"Value ({attribute}) for parameter attribute is invalid")
        shared = snapshots.changed_permissions(
            list(image.shared_with or []) + (["all"] if image.public else []), p,
            "LaunchPermission", ctx.account_id)
        image.public = "all" in shared
        image.shared_with = [who for who in shared if who != "all"]
    return {}


@action("ec2", "ResetImageAttribute")
def reset_image_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Attribute") != "launchPermission":
        raise exc.InvalidParameterValue(
            f"Value ({p.get('Attribute')}) for parameter attribute is invalid")
    with ctx.cloud.store.write() as s:
        image = own_image(s, ctx.account_id, p["ImageId"])
        image.public, image.shared_with = False, []
    return {}


@action("ec2", "DescribeImageAttribute")
def describe_image_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    attribute = p.get("Attribute")
    with ctx.cloud.store.read() as s:
        image = own_image(s, ctx.account_id, p["ImageId"])
        out: dict[str, Any] = {"ImageId": image.image_id}
        if attribute == "launchPermission":
            out["LaunchPermissions"] = snapshots.permissions_view(
                (["all"] if image.public else []) + list(image.shared_with or []))
        elif attribute == "description":
            out["Description"] = {"Value": image.description}
        elif attribute == "blockDeviceMapping":
            out["BlockDeviceMappings"] = view(image, {})["BlockDeviceMappings"]
        elif attribute in ("productCodes", "sriovNetSupport", "kernel", "ramdisk",
                           "bootMode", "imdsSupport", "lastLaunchedTime", "tpmSupport",
                           "uefiData", "deregistrationProtection"):
            pass
        else:
            raise exc.InvalidParameterValue(
                f"Value ({attribute}) for parameter attribute is invalid")
    return out
