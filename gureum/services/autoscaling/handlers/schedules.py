"""Scheduled actions: PutScheduledUpdateGroupAction (one time or a cron Recurrence, in a
time zone), DescribeScheduledActions, DeleteScheduledAction. The controller runs them."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from croniter import croniter
from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import resources as res
from gureum.store.autoscaling_models import AutoScalingGroup, ScheduledAction
from gureum.store.models import utcnow

MAX_ACTIONS = 125


def next_run(action_: ScheduledAction, after: dt.datetime) -> dt.datetime | None:
    """When a recurring action runs next after `after` (UTC), within its window."""
    if not action_.recurrence:
        return None
    zone = zoneinfo.ZoneInfo(action_.time_zone or "UTC")
    start = max(after, action_.start_time) if action_.start_time else after
    upcoming = croniter(action_.recurrence, start.astimezone(zone)).get_next(dt.datetime)
    upcoming = upcoming.astimezone(dt.UTC)
    if action_.end_time and upcoming > action_.end_time:
        return None
    return upcoming


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@action("autoscaling", "PutScheduledUpdateGroupAction")
def put_scheduled_update_group_action(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if all(p.get(k) is None for k in ("MinSize", "MaxSize", "DesiredCapacity")):
        raise exc.ValidationError("At least one of MinSize, MaxSize or DesiredCapacity must "
                                  "be specified")
    recurrence = p.get("Recurrence")
    if recurrence and not croniter.is_valid(recurrence):
        raise exc.ValidationError(f"Given recurrence string {recurrence[:64]} is invalid: "
                                  "use five cron fields")
    if p.get("TimeZone"):
        try:
            zoneinfo.ZoneInfo(p["TimeZone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise exc.ValidationError(f"Invalid time zone {p['TimeZone'][:64]}") from None
    start = _utc(p.get("StartTime") or p.get("Time"))
    end = _utc(p.get("EndTime"))
    now = utcnow()
    if not recurrence and start is None:
        raise exc.ValidationError("A one-time action needs StartTime (or Time); a recurring "
                                  "one needs Recurrence")
    if end is not None and end < now:
        raise exc.ValidationError("EndTime is in the past")
    if start is not None and end is not None and end <= start:
        raise exc.ValidationError("EndTime must be after StartTime")
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        row = s.scalar(select(ScheduledAction).where(
            ScheduledAction.group_arn == g.arn, ScheduledAction.name == p["ScheduledActionName"]))
        if row is None:
            held = len(list(s.scalars(select(ScheduledAction.arn).where(
                ScheduledAction.group_arn == g.arn))))
            if held >= MAX_ACTIONS:
                raise exc.LimitExceeded(f"A group has at most {MAX_ACTIONS} scheduled actions")
            row = ScheduledAction(
                arn=(f"arn:aws:autoscaling:{ctx.region}:{ctx.account_id}:scheduledUpdateGroupAction:"
                     f"{uuid.uuid4()}:autoScalingGroupName/{g.name}:scheduledActionName/"
                     f"{p['ScheduledActionName']}"),
                account_id=ctx.account_id, group_arn=g.arn, name=p["ScheduledActionName"])
            s.add(row)
        row.start_time, row.end_time = start, end
        row.recurrence, row.time_zone = recurrence, p.get("TimeZone")
        row.min_size, row.max_size = p.get("MinSize"), p.get("MaxSize")
        row.desired_capacity = p.get("DesiredCapacity")
        row.next_run_at = next_run(row, now) if recurrence else start
    return {}


def _view(row: ScheduledAction, group_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"AutoScalingGroupName": group_name, "ScheduledActionName": row.name,
                           "ScheduledActionARN": row.arn}
    when = row.next_run_at or row.start_time
    if when is not None:
        out["Time"] = out["StartTime"] = when
    for key, value in (("EndTime", row.end_time), ("Recurrence", row.recurrence),
                       ("MinSize", row.min_size), ("MaxSize", row.max_size),
                       ("DesiredCapacity", row.desired_capacity), ("TimeZone", row.time_zone)):
        if value is not None:
            out[key] = value
    return out


@action("autoscaling", "DescribeScheduledActions")
def describe_scheduled_actions(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        query = select(ScheduledAction, AutoScalingGroup.name).join(
            AutoScalingGroup, AutoScalingGroup.arn == ScheduledAction.group_arn).where(
            ScheduledAction.account_id == ctx.account_id)
        if p.get("AutoScalingGroupName"):
            query = query.where(AutoScalingGroup.name == p["AutoScalingGroupName"])
        names = set(p.get("ScheduledActionNames") or [])
        rows = [(a, n) for a, n in s.execute(query.order_by(ScheduledAction.name)).all()
                if not names or a.name in names]
    chunk, token = res.page(rows, p.get("MaxRecords"), p.get("NextToken"))
    out: dict[str, Any] = {"ScheduledUpdateGroupActions": [_view(a, n) for a, n in chunk]}
    if token:
        out["NextToken"] = token
    return out


@action("autoscaling", "DeleteScheduledAction")
def delete_scheduled_action(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        row = s.scalar(select(ScheduledAction).where(
            ScheduledAction.group_arn == g.arn, ScheduledAction.name == p["ScheduledActionName"]))
        if row is None:
            raise exc.ValidationError(f"Scheduled Update Group Action not found - "
                                      f"{p['ScheduledActionName'][:255]}")
        s.delete(row)
    return {}
