"""Images (AMIs). One built-in image today; RegisterImage/CreateImage come with EBS."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.cloud import CLOUD_OWNER_ALIAS
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import ROOT_DEVICE, tag_list
from gureum.store import models

FILTERS = {"image-id", "name", "owner-id", "owner-alias", "state", "architecture", "is-public",
           "image-type", "root-device-type", "virtualization-type", "platform-details",
           "description", "hypervisor"}


def _owner_matches(image: models.Image, owners: list[str], account_id: str) -> bool:
    for owner in owners:
        if owner == "self" and image.owner_id == account_id:
            return True
        if owner in (image.owner_id, image.owner_alias):
            return True
    return False


@action("ec2", "DescribeImages")
def describe_images(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    image_ids = p.get("ImageIds") or []
    for image_id in image_ids:
        ids.check_image_id(image_id)
    flt = filters.validate(p.get("Filters"), FILTERS)
    with ctx.cloud.store.read() as s:
        images = list(s.scalars(select(models.Image).order_by(models.Image.name)))
        tags = common.tags_of(s, ctx.account_id, [i.image_id for i in images])
    known = {i.image_id for i in images}
    missing = [i for i in image_ids if i not in known]
    if missing:
        raise exc.InvalidAMIIDNotFound(f"The image id '[{', '.join(missing)}]' does not exist")
    out = []
    for image in images:
        if image_ids and image.image_id not in image_ids:
            continue
        if p.get("Owners") and not _owner_matches(image, p["Owners"], ctx.account_id):
            continue
        fields = {"image-id": image.image_id, "name": image.name, "owner-id": image.owner_id,
                  "owner-alias": image.owner_alias, "state": image.state,
                  "architecture": "x86_64", "is-public": image.public, "image-type": "machine",
                  "root-device-type": "ebs", "virtualization-type": "hvm",
                  "platform-details": "Linux/UNIX", "description": image.description,
                  "hypervisor": "xen"}
        if not filters.match(flt, fields, tags[image.image_id]):
            continue
        out.append({
            "ImageId": image.image_id, "Name": image.name, "Description": image.description,
            "OwnerId": image.owner_id, "ImageOwnerAlias": image.owner_alias,
            "State": image.state, "Public": image.public, "Architecture": "x86_64",
            "ImageType": "machine", "RootDeviceType": "ebs", "RootDeviceName": ROOT_DEVICE,
            "VirtualizationType": "hvm", "Hypervisor": "xen", "EnaSupport": True,
            "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances",
            "CreationDate": image.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "ImageLocation": f"{CLOUD_OWNER_ALIAS}/{image.name}",
            "BlockDeviceMappings": [{"DeviceName": ROOT_DEVICE, "Ebs": {
                "VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True,
                "Encrypted": False}}],
            "Tags": tag_list(tags[image.image_id]) or None,
        })
    return {"Images": out}

