"""Tags on CloudWatch alarms: TagResource, UntagResource, ListTagsForResource, and the
Tags of PutMetricAlarm."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.services.cloudwatch import exceptions as exc
from gureum.store.cloudwatch_models import CloudWatchTag, MetricAlarm

MAX_TAGS = 50


def put(s: Session, arn: str, tags: list[dict[str, Any]]) -> None:
    for tag in tags:
        key, value = tag.get("Key") or "", tag.get("Value") or ""
        if not 1 <= len(key) <= 128 or len(value) > 256 or key.startswith("aws:"):
            raise exc.InvalidParameterValue(f"Tag key {key[:128]!r} or its value is not valid")
        row = s.get(CloudWatchTag, (arn, key)) or CloudWatchTag(resource_arn=arn, key=key)
        row.value = value
        s.add(row)
    s.flush()
    held = s.scalar(select(func.count()).select_from(CloudWatchTag).where(
        CloudWatchTag.resource_arn == arn)) or 0
    if held > MAX_TAGS:
        raise exc.InvalidParameterValue(f"A resource has at most {MAX_TAGS} tags")


def forget(s: Session, arn: str) -> None:
    s.execute(delete(CloudWatchTag).where(CloudWatchTag.resource_arn == arn))


def _alarm(s: Session, ctx: RequestContext, arn: str) -> MetricAlarm:
    alarm = s.get(MetricAlarm, arn)
    if alarm is None or alarm.account_id != ctx.account_id:
        raise exc.ResourceNotFoundException(f"The resource {arn[:512]} does not exist")
    return alarm


@action("monitoring", "TagResource")
def tag_resource(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        put(s, _alarm(s, ctx, p["ResourceARN"]).arn, p["Tags"])
    return {}


@action("monitoring", "UntagResource")
def untag_resource(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        arn = _alarm(s, ctx, p["ResourceARN"]).arn
        s.execute(delete(CloudWatchTag).where(CloudWatchTag.resource_arn == arn,
                                              CloudWatchTag.key.in_(p["TagKeys"])))
    return {}


@action("monitoring", "ListTagsForResource")
def list_tags_for_resource(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        arn = _alarm(s, ctx, p["ResourceARN"]).arn
        return {"Tags": [{"Key": t.key, "Value": t.value} for t in s.scalars(
            select(CloudWatchTag).where(CloudWatchTag.resource_arn == arn)
            .order_by(CloudWatchTag.key))]}
