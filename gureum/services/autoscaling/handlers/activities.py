"""DescribeScalingActivities: every launch and termination with its cause, newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import resources as res
from gureum.store.autoscaling_models import AutoScalingGroup, ScalingActivity


@action("autoscaling", "DescribeScalingActivities")
def describe_scaling_activities(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        query = select(ScalingActivity).where(ScalingActivity.account_id == ctx.account_id)
        if p.get("AutoScalingGroupName"):
            query = query.where(ScalingActivity.group_name == p["AutoScalingGroupName"])
        if p.get("ActivityIds"):
            query = query.where(ScalingActivity.activity_id.in_(p["ActivityIds"]))
        if not p.get("IncludeDeletedGroups"):
            live = select(AutoScalingGroup.arn).where(
                AutoScalingGroup.account_id == ctx.account_id)
            query = query.where(ScalingActivity.group_arn.in_(live))
        chunk, token = res.page.select(s, query.order_by(ScalingActivity.started_at.desc(),
                                                         ScalingActivity.activity_id),
                                       p.get("MaxRecords"), p.get("NextToken"))
        out: dict[str, Any] = {"Activities": [res.activity_view(a) for a in chunk]}
    if token:
        out["NextToken"] = token
    return out
