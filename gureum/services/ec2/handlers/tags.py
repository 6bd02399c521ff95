"""CreateTags, DeleteTags, DescribeTags over every taggable resource of the account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids, images, peering, prefix_lists
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers import (
    addresses,
    common,
    dhcp_options,
    network_interfaces,
    placement_groups,
    routing,
    snapshots,
    vpcs,
)
from gureum.services.ec2.views import volume_id
from gureum.store import models
from gureum.store.ebs_models import Volume
from gureum.store.host_models import PlacementGroup


def _key_pair_not_found(pair_id: str) -> Exception:
    return exc.InvalidKeyPairNotFound(f"The key pair ID '{pair_id}' does not exist")


def _image(ctx: RequestContext, s: Session, image_id: str) -> None:
    image = s.get(models.Image, image_id)
    if image is None or not images.visible(image, ctx.account_id):
        raise exc.InvalidAMIIDNotFound(f"The image id '[{image_id}]' does not exist")


def _volume(ctx: RequestContext, s: Session, rid: str) -> None:
    row = s.get(Volume, rid)
    if row is not None and row.account_id == ctx.account_id and row.state != "deleting":
        return
    _instance_part(ctx, s, rid, volume_id,  # the root disk of an instance made before EBS
                   exc.InvalidVolumeNotFound(f"The volume '{rid}' does not exist."))


def _instance_part(ctx: RequestContext, s: Session, resource_id: str, derive: Callable[[str], str],
                   not_found: Exception) -> None:
    """A volume or network interface: named after a live instance of the account."""
    live = s.scalars(select(models.Instance.instance_id).where(
        models.Instance.account_id == ctx.account_id, models.Instance.state != "terminated"))
    if resource_id not in {derive(i) for i in live}:
        raise not_found


# One existence-and-ownership check per taggable prefix (every prefix gureum issues an
# id with), through each type's own lookup and NotFound.
_CHECKS: dict[str, Callable[[RequestContext, Session, str], Any]] = {
    "i": lambda ctx, s, rid: common.instances_by_id(s, ctx.account_id, [rid]),
    "ami": _image,
    "key": lambda ctx, s, rid: common.owned(s, ctx.account_id, models.KeyPair, rid,
                                            _key_pair_not_found),
    "vpc": vpcs.own_vpc,
    "dopt": lambda ctx, s, rid: dhcp_options.own_dhcp_options(ctx, s, rid),
    "pl": lambda ctx, s, rid: prefix_lists.own(s, ctx.account_id, rid),
    "pcx": lambda ctx, s, rid: peering.visible(s, ctx.account_id, rid),
    "pg": lambda ctx, s, rid: common.owned(s, ctx.account_id, PlacementGroup, rid,
                                           placement_groups._unknown),
    "subnet": vpcs.own_subnet,
    "sg": lambda ctx, s, rid: sg.resolve_group(s, ctx.account_id, rid, None),
    "igw": routing._own_igw,
    "rtb": routing._own_table,
    "eipalloc": lambda ctx, s, rid: addresses._find(s, ctx.account_id, rid, None),
    "vol": _volume,
    "snap": lambda ctx, s, rid: snapshots.own_snapshot(s, ctx.account_id, rid),
    "eni": lambda ctx, s, rid: network_interfaces.own_interface(ctx, s, rid),
}


def _check_resources(ctx: RequestContext, s: Session, resource_ids: list[str]) -> None:
    """Each id well formed, of a taggable type, and a resource of the caller's account."""
    for rid in resource_ids:
        prefix = rid.split("-")[0]
        if prefix not in _CHECKS or not ids.is_valid(rid, prefix):
            raise exc.InvalidID(f"The ID '{rid[:64]}' is not valid")
    for rid in resource_ids:
        _CHECKS[rid.split("-")[0]](ctx, s, rid)


@action("ec2", "CreateTags")
def create_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    resources = p["Resources"]
    tags = common.validate_tags(p["Tags"])
    with ctx.cloud.store.write() as s:
        _check_resources(ctx, s, resources)
        for rid in resources:
            common.put_tags(s, ctx.account_id, rid, tags)
            count = len(common.tags_of(s, ctx.account_id, [rid])[rid])
            if count > 50:
                raise exc.TagLimitExceeded(
                    f"The maximum number of Tags for a resource has been reached: {rid} "
                    f"would have {count} (at most 50).")
    return {}


@action("ec2", "DeleteTags")
def delete_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    resources = p["Resources"]
    with ctx.cloud.store.write() as s:
        _check_resources(ctx, s, resources)
        rows = list(s.scalars(select(models.Tag).where(models.Tag.account_id == ctx.account_id,
                                                       models.Tag.resource_id.in_(resources))))
        for row in rows:
            wanted = p.get("Tags")
            if wanted is None or any(
                    t.get("Key") == row.key and ("Value" not in t or t["Value"] == row.value)
                    for t in wanted):
                s.delete(row)
    return {}


@action("ec2", "DescribeTags")
def describe_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), {"key", "value", "resource-id", "resource-type"})
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.Tag).where(models.Tag.account_id == ctx.account_id)
                              .order_by(models.Tag.resource_id, models.Tag.key)))
    out = []
    for row in rows:
        fields = {"key": row.key, "value": row.value, "resource-id": row.resource_id,
                  "resource-type": row.resource_type}
        if filters.match(flt, fields, {}):
            out.append({"ResourceId": row.resource_id, "ResourceType": row.resource_type,
                        "Key": row.key, "Value": row.value})
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"))
    return {"Tags": chunk, "NextToken": token}
