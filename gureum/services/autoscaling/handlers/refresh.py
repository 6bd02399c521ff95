"""Instance refresh: StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh, RollbackInstanceRefresh. The Auto Scaling controller rolls it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import refresh
from gureum.services.autoscaling import resources as res
from gureum.services.autoscaling.handlers.groups import template_ref
from gureum.store.autoscaling_models import InstanceRefresh
from gureum.store.models import utcnow

NOT_OFFERED = ("CheckpointPercentages", "CheckpointDelay", "AlarmSpecification", "BakeTime")


def _preferences(p: dict[str, Any]) -> dict[str, Any]:
    prefs = dict(p.get("Preferences") or {})
    for member in NOT_OFFERED:
        if prefs.get(member):
            raise exc.ValidationError(f"The preference {member} is not offered")
    low = prefs.get("MinHealthyPercentage", refresh.DEFAULT_MIN_HEALTHY)
    high = prefs.get("MaxHealthyPercentage", 100)
    if not 0 <= low <= 100:
        raise exc.ValidationError("MinHealthyPercentage must be between 0 and 100")
    if not 100 <= high <= 200:
        raise exc.ValidationError("MaxHealthyPercentage must be between 100 and 200")
    if high - low > 100:
        raise exc.ValidationError("The difference between MinHealthyPercentage and "
                                  "MaxHealthyPercentage cannot be greater than 100")
    if prefs.get("InstanceWarmup", 0) < 0:
        raise exc.ValidationError("InstanceWarmup must not be negative")
    return prefs


@action("autoscaling", "StartInstanceRefresh")
def start_instance_refresh(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Strategy", "Rolling") != "Rolling":
        raise exc.ValidationError(f"Strategy {p['Strategy'][:32]} is not valid: Rolling")
    prefs = _preferences(p)
    desired = p.get("DesiredConfiguration") or {}
    if desired.get("MixedInstancesPolicy"):
        raise exc.ValidationError("MixedInstancesPolicy is not offered")
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        if refresh.active(s, g.arn) is not None:
            raise exc.InstanceRefreshInProgress("An Instance Refresh is already in progress "
                                                "and blocks the execution of this Instance "
                                                "Refresh.")
        if prefs.get("AutoRollback") and not desired.get("LaunchTemplate"):
            raise exc.ValidationError("AutoRollback needs a DesiredConfiguration to roll "
                                      "back from")
        row = InstanceRefresh(
            refresh_id=str(uuid.uuid4()), account_id=ctx.account_id, group_arn=g.arn,
            group_name=g.name, status="Pending", preferences=prefs,
            desired_configuration=desired, previous_template_id=g.launch_template_id,
            previous_template_version=g.launch_template_version, instances_to_update=0,
            total=0, started_at=utcnow())
        if desired.get("LaunchTemplate"):
            g.launch_template_id, g.launch_template_version = template_ref(
                s, ctx, desired["LaunchTemplate"])
        s.add(row)
        return {"InstanceRefreshId": row.refresh_id}


def _view(r: InstanceRefresh) -> dict[str, Any]:
    out: dict[str, Any] = {
        "InstanceRefreshId": r.refresh_id, "AutoScalingGroupName": r.group_name,
        "Status": r.status, "StartTime": r.started_at,
        "PercentageComplete": refresh.percentage(r),
        "InstancesToUpdate": r.instances_to_update, "Preferences": r.preferences,
        "Strategy": "Rolling"}
    if r.status_reason:
        out["StatusReason"] = r.status_reason
    if r.ended_at is not None:
        out["EndTime"] = r.ended_at
    if r.desired_configuration:
        out["DesiredConfiguration"] = r.desired_configuration
    if r.rollback_started_at is not None:
        out["RollbackDetails"] = {"RollbackReason": r.status_reason or "",
                                  "RollbackStartTime": r.rollback_started_at,
                                  "PercentageCompleteOnRollback": refresh.percentage(r),
                                  "InstancesToUpdateOnRollback": r.instances_to_update}
    return out


@action("autoscaling", "DescribeInstanceRefreshes")
def describe_instance_refreshes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        query = select(InstanceRefresh).where(InstanceRefresh.group_arn == g.arn)
        if p.get("InstanceRefreshIds"):
            query = query.where(InstanceRefresh.refresh_id.in_(p["InstanceRefreshIds"]))
        rows = list(s.scalars(query.order_by(InstanceRefresh.started_at.desc())))
        chunk, token = res.page(rows, p.get("MaxRecords"), p.get("NextToken"))
        out: dict[str, Any] = {"InstanceRefreshes": [_view(r) for r in chunk]}
    if token:
        out["NextToken"] = token
    return out


def _active(s: Any, ctx: RequestContext, name: str) -> tuple[Any, InstanceRefresh]:
    g = res.group(s, ctx.account_id, name)
    found = refresh.active(s, g.arn)
    if found is None:
        raise exc.ActiveInstanceRefreshNotFound(f"No in progress or pending Instance Refresh "
                                                f"found for Auto Scaling group {name}")
    return g, found


@action("autoscaling", "CancelInstanceRefresh")
def cancel_instance_refresh(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        _, row = _active(s, ctx, p["AutoScalingGroupName"])
        if row.status != "Cancelling":
            row.status = "Cancelling"
        return {"InstanceRefreshId": row.refresh_id}


@action("autoscaling", "RollbackInstanceRefresh")
def rollback_instance_refresh(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g, row = _active(s, ctx, p["AutoScalingGroupName"])
        if row.status in ("RollbackInProgress", "Cancelling"):
            raise exc.IrreversibleInstanceRefresh(f"The instance refresh is {row.status}; it "
                                                  "cannot be rolled back")
        if not row.desired_configuration:
            raise exc.IrreversibleInstanceRefresh("The instance refresh did not change the "
                                                  "configuration: there is nothing to roll "
                                                  "back to")
        g.launch_template_id = row.previous_template_id
        g.launch_template_version = row.previous_template_version
        row.status, row.rollback_started_at = "RollbackInProgress", utcnow()
        row.status_reason = "Rollback requested by the user."
        return {"InstanceRefreshId": row.refresh_id}
