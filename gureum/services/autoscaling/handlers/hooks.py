"""Lifecycle hooks: Put/Describe/DeleteLifecycleHook, CompleteLifecycleAction,
RecordLifecycleActionHeartbeat, DescribeLifecycleHookTypes. A waiting instance shows
Pending:Wait or Terminating:Wait in DescribeAutoScalingInstances."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import hooks
from gureum.services.autoscaling import resources as res
from gureum.store.autoscaling_models import AutoScalingGroup, GroupInstance, LifecycleHook

MAX_HOOKS = 50
TRANSITIONS = (hooks.LAUNCHING, hooks.TERMINATING)


@action("autoscaling", "PutLifecycleHook")
def put_lifecycle_hook(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        row = s.get(LifecycleHook, (g.arn, p["LifecycleHookName"]))
        if row is None:
            if not p.get("LifecycleTransition"):
                raise exc.ValidationError("LifecycleTransition is required for a new hook")
            held = len(list(s.scalars(select(LifecycleHook.name).where(
                LifecycleHook.group_arn == g.arn))))
            if held >= MAX_HOOKS:
                raise exc.LimitExceeded(f"A group has at most {MAX_HOOKS} lifecycle hooks")
            row = LifecycleHook(group_arn=g.arn, name=p["LifecycleHookName"],
                                heartbeat_timeout=3600, default_result="ABANDON")
            s.add(row)
        if p.get("LifecycleTransition") is not None:
            if p["LifecycleTransition"] not in TRANSITIONS:
                raise exc.ValidationError(f"Invalid lifecycle transition "
                                          f"{p['LifecycleTransition'][:64]}; valid: "
                                          f"{', '.join(TRANSITIONS)}")
            row.transition = p["LifecycleTransition"]
        if p.get("HeartbeatTimeout") is not None:
            if not 30 <= p["HeartbeatTimeout"] <= 7200:
                raise exc.ValidationError("HeartbeatTimeout must be between 30 and 7200 seconds")
            row.heartbeat_timeout = p["HeartbeatTimeout"]
        if p.get("DefaultResult") is not None:
            if p["DefaultResult"] not in hooks.RESULTS:
                raise exc.ValidationError("DefaultResult must be CONTINUE or ABANDON")
            row.default_result = p["DefaultResult"]
        for member, column in (("NotificationMetadata", "notification_metadata"),
                               ("NotificationTargetARN", "notification_target_arn"),
                               ("RoleARN", "role_arn")):
            if p.get(member) is not None:
                setattr(row, column, p[member])
    return {}


def _view(hook: LifecycleHook, group_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LifecycleHookName": hook.name, "AutoScalingGroupName": group_name,
        "LifecycleTransition": hook.transition, "HeartbeatTimeout": hook.heartbeat_timeout,
        "GlobalTimeout": min(172800, hook.heartbeat_timeout * 100),
        "DefaultResult": hook.default_result}
    for key, value in (("NotificationMetadata", hook.notification_metadata),
                       ("NotificationTargetARN", hook.notification_target_arn),
                       ("RoleARN", hook.role_arn)):
        if value is not None:
            out[key] = value
    return out


@action("autoscaling", "DescribeLifecycleHooks")
def describe_lifecycle_hooks(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names = set(p.get("LifecycleHookNames") or [])
    with ctx.cloud.store.read() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        rows = [h for h in s.scalars(select(LifecycleHook).where(
            LifecycleHook.group_arn == g.arn).order_by(LifecycleHook.name))
            if not names or h.name in names]
        return {"LifecycleHooks": [_view(h, g.name) for h in rows]}


@action("autoscaling", "DeleteLifecycleHook")
def delete_lifecycle_hook(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        row = s.get(LifecycleHook, (g.arn, p["LifecycleHookName"]))
        if row is None:
            raise exc.ValidationError(f"No Lifecycle Hook found for name "
                                      f"{p['LifecycleHookName'][:255]}")
        s.delete(row)
    return {}


def _waiting(s: Session, g: AutoScalingGroup, p: dict[str, Any]) -> GroupInstance:
    token, instance_id = p.get("LifecycleActionToken"), p.get("InstanceId")
    if not token and not instance_id:
        raise exc.ValidationError("Either LifecycleActionToken or InstanceId is required")
    query = select(GroupInstance).where(GroupInstance.group_arn == g.arn,
                                        GroupInstance.action_hook == p["LifecycleHookName"],
                                        GroupInstance.lifecycle_state.in_(
                                            ("Pending:Wait", "Terminating:Wait")))
    query = query.where(GroupInstance.action_token == token) if token else \
        query.where(GroupInstance.instance_id == instance_id)
    found = s.scalar(query)
    if found is None:
        raise exc.ValidationError(f"No active Lifecycle Action found with "
                                  f"{'token ' + token[:64] if token else 'instance ID ' + instance_id[:32]}")
    return found


@action("autoscaling", "CompleteLifecycleAction")
def complete_lifecycle_action(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p["LifecycleActionResult"] not in hooks.RESULTS:
        raise exc.ValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        _waiting(s, g, p).action_result = p["LifecycleActionResult"]
    return {}


@action("autoscaling", "RecordLifecycleActionHeartbeat")
def record_lifecycle_action_heartbeat(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        m = _waiting(s, g, p)
        hook = s.get(LifecycleHook, (g.arn, p["LifecycleHookName"]))
        m.action_deadline = res.utcnow() + dt.timedelta(seconds=hook.heartbeat_timeout)
    return {}


@action("autoscaling", "DescribeLifecycleHookTypes")
def describe_lifecycle_hook_types(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"LifecycleHookTypes": list(TRANSITIONS)}
