"""CreateTags, DeleteTags, DescribeTags over every taggable resource of the account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.services.ec2.handlers import common
from gureum.store import models


def _check_resources(ctx: RequestContext, resource_ids: list[str]) -> None:
    with ctx.cloud.store.read() as s:
        for rid in resource_ids:
            prefix = rid.split("-")[0]
            if prefix not in common.RESOURCE_TYPES or not ids.is_valid(rid, prefix):
                raise exc.InvalidID(f"The ID '{rid}' is not valid")
            if prefix == "i":
                common.instances_by_id(s, ctx.account_id, [rid])
            elif prefix == "key":
                pair = s.get(models.KeyPair, rid)
                if pair is None or pair.account_id != ctx.account_id:
                    raise exc.InvalidKeyPairNotFound(f"The key pair ID '{rid}' does not exist")
            elif prefix == "ami" and s.get(models.Image, rid) is None:
                raise exc.InvalidAMIIDNotFound(f"The image id '[{rid}]' does not exist")


@action("ec2", "CreateTags")
def create_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    resources = p["Resources"]
    tags = common.validate_tags(p["Tags"])
    _check_resources(ctx, resources)
    with ctx.cloud.store.write() as s:
        for rid in resources:
            common.put_tags(s, ctx.account_id, rid, tags)
            count = len(common.tags_of(s, ctx.account_id, [rid])[rid])
            if count > 50:
                raise exc.InvalidParameterValue(
                    f"Resource {rid} would have {count} tags; the maximum is 50")
    return {}


@action("ec2", "DeleteTags")
def delete_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    resources = p["Resources"]
    _check_resources(ctx, resources)
    with ctx.cloud.store.write() as s:
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
