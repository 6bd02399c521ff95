"""Tags on load balancers, target groups, listeners and rules (keyed by ARN)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.store.elbv2_models import Elbv2Tag

MAX_TAGS = 50


def validate_tags(tags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = [t["Key"] for t in tags]
    if len(set(keys)) != len(keys):
        raise exc.DuplicateTagKeys("Tag keys must be unique")
    for tag in tags:
        key, value = tag["Key"], tag.get("Value", "")
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise exc.ValidationError("Tag keys are 1-128 characters, values up to 256")
        if key.lower().startswith("aws:"):
            raise exc.ValidationError("Tag keys may not start with 'aws:'")
    return [(t["Key"], t.get("Value", "")) for t in tags]


def put_tags(s: Session, account_id: str, arn: str, tags: list[tuple[str, str]]) -> None:
    for key, value in tags:
        row = s.get(Elbv2Tag, (arn, key))
        if row is None:
            s.add(Elbv2Tag(resource_arn=arn, key=key, value=value, account_id=account_id))
        else:
            row.value = value
    s.flush()
    count = len(list(s.scalars(select(Elbv2Tag.key).where(Elbv2Tag.resource_arn == arn))))
    if count > MAX_TAGS:
        raise exc.TooManyTags(f"A resource can have at most {MAX_TAGS} tags")


def delete_tags(s: Session, arns: Iterable[str]) -> None:
    s.execute(delete(Elbv2Tag).where(Elbv2Tag.resource_arn.in_(list(arns))))


def _owned(s: Session, account_id: str, arn: str) -> None:
    """The resource exists and is the caller's, with its own type's NotFound."""
    kind = arn.split(":", 5)[-1].split("/", 1)[0]
    lookups = {"loadbalancer": res.load_balancer, "targetgroup": res.target_group,
               "listener": res.listener, "listener-rule": res.rule}
    lookup = lookups.get(kind)
    if lookup is None:
        raise exc.ValidationError(f"'{arn[:512]}' is not a valid resource ARN")
    lookup(s, account_id, arn)


@action("elasticloadbalancing", "AddTags")
def add_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = validate_tags(p["Tags"])
    with ctx.cloud.store.write() as s:
        for arn in p["ResourceArns"]:
            _owned(s, ctx.account_id, arn)
            put_tags(s, ctx.account_id, arn, tags)
    return {}


@action("elasticloadbalancing", "RemoveTags")
def remove_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        for arn in p["ResourceArns"]:
            _owned(s, ctx.account_id, arn)
            s.execute(delete(Elbv2Tag).where(Elbv2Tag.resource_arn == arn,
                                             Elbv2Tag.key.in_(p["TagKeys"])))
    return {}


@action("elasticloadbalancing", "DescribeTags")
def describe_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if len(p["ResourceArns"]) > 20:
        raise exc.ValidationError("At most 20 resource ARNs can be described at once")
    out = []
    with ctx.cloud.store.read() as s:
        for arn in p["ResourceArns"]:
            _owned(s, ctx.account_id, arn)
            rows = s.scalars(select(Elbv2Tag).where(Elbv2Tag.resource_arn == arn)
                             .order_by(Elbv2Tag.key))
            out.append({"ResourceArn": arn,
                        "Tags": [{"Key": t.key, "Value": t.value} for t in rows]})
    return {"TagDescriptions": out}
