"""Scaling policies: PutScalingPolicy (simple, step, target tracking with the alarms it
owns), DescribePolicies, DeletePolicy, ExecutePolicy."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import policies
from gureum.services.autoscaling import resources as res
from gureum.store.autoscaling_models import AutoScalingGroup, ScalingPolicy
from gureum.store.cloudwatch_models import MetricAlarm
from gureum.store.models import utcnow

MAX_POLICIES = 50


def _policy(s: Any, ctx: RequestContext, g: AutoScalingGroup | None, name: str) -> ScalingPolicy:
    query = select(ScalingPolicy).where(ScalingPolicy.account_id == ctx.account_id)
    query = query.where(ScalingPolicy.arn == name) if name.startswith("arn:") else \
        query.where(ScalingPolicy.name == name)
    if g is not None:
        query = query.where(ScalingPolicy.group_arn == g.arn)
    found = s.scalar(query)
    if found is None:
        raise exc.ValidationError(f"No policy found with name {name[:255]}")
    return found


def _check_label(g: AutoScalingGroup, config: dict[str, Any]) -> None:
    """ALBRequestCountPerTarget must name one of the group's own target groups."""
    predefined = (config.get("TargetTrackingConfiguration") or {}).get(
        "PredefinedMetricSpecification") or {}
    if predefined.get("PredefinedMetricType") != "ALBRequestCountPerTarget":
        return
    label = predefined.get("ResourceLabel") or ""
    tg = label.partition("/targetgroup/")[2]
    if not tg or not any(arn.endswith(":targetgroup/" + tg) for arn in g.target_group_arns):
        raise exc.ValidationError(f"The target group in ResourceLabel {label[:255]} is not "
                                  f"attached to the Auto Scaling group {g.name}")


@action("autoscaling", "PutScalingPolicy")
def put_scaling_policy(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    policy_type = p.get("PolicyType") or "SimpleScaling"
    config = policies.check(policy_type, p)
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        _check_label(g, config)
        row = s.scalar(select(ScalingPolicy).where(ScalingPolicy.group_arn == g.arn,
                                                   ScalingPolicy.name == p["PolicyName"]))
        if row is None:
            held = len(list(s.scalars(select(ScalingPolicy.arn).where(
                ScalingPolicy.group_arn == g.arn))))
            if held >= MAX_POLICIES:
                raise exc.LimitExceeded(f"A group has at most {MAX_POLICIES} scaling policies")
            row = ScalingPolicy(
                arn=(f"arn:aws:autoscaling:{ctx.region}:{ctx.account_id}:scalingPolicy:"
                     f"{uuid.uuid4()}:autoScalingGroupName/{g.name}:policyName/{p['PolicyName']}"),
                account_id=ctx.account_id, group_arn=g.arn, name=p["PolicyName"],
                alarm_names=[])
            s.add(row)
        elif row.policy_type != policy_type:
            raise exc.ValidationError("A policy's type cannot be changed; delete it first")
        row.policy_type, row.config = policy_type, config
        row.enabled = p.get("Enabled", True)
        if row.alarm_names:  # a changed target: its alarms are made again
            s.execute(delete(MetricAlarm).where(MetricAlarm.account_id == ctx.account_id,
                                                MetricAlarm.name.in_(row.alarm_names)))
            s.flush()
        alarms = []
        if policy_type == "TargetTrackingScaling":
            alarms = policies.tracking_alarms(g, row.arn, config["TargetTrackingConfiguration"],
                                              str(uuid.uuid4()))
            s.add_all(alarms)
        row.alarm_names = [a.name for a in alarms]
        return {"PolicyARN": row.arn,
                "Alarms": [{"AlarmName": a.name, "AlarmARN": a.arn} for a in alarms]}


@action("autoscaling", "DescribePolicies")
def describe_policies(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        query = select(ScalingPolicy, AutoScalingGroup.name).join(
            AutoScalingGroup, AutoScalingGroup.arn == ScalingPolicy.group_arn).where(
            ScalingPolicy.account_id == ctx.account_id)
        if p.get("AutoScalingGroupName"):
            query = query.where(AutoScalingGroup.name == p["AutoScalingGroupName"])
        names = p.get("PolicyNames") or []
        kinds = p.get("PolicyTypes") or []
        rows = [(policy, group) for policy, group in s.execute(
            query.order_by(AutoScalingGroup.name, ScalingPolicy.name)).all()
            if (not names or policy.name in names or policy.arn in names)
            and (not kinds or policy.policy_type in kinds)]
        chunk, token = res.page(rows, p.get("MaxRecords"), p.get("NextToken"))
        alarms_of = policies.alarms_by_policy(s, ctx.account_id)
        out: dict[str, Any] = {"ScalingPolicies": [policies.view(s, policy, group, alarms_of)
                                                   for policy, group in chunk]}
    if token:
        out["NextToken"] = token
    return out


@action("autoscaling", "DeletePolicy")
def delete_policy(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"]) \
            if p.get("AutoScalingGroupName") else None
        row = _policy(s, ctx, g, p["PolicyName"])
        if row.alarm_names:
            s.execute(delete(MetricAlarm).where(MetricAlarm.account_id == ctx.account_id,
                                                MetricAlarm.name.in_(row.alarm_names)))
        s.delete(row)
    return {}


@action("autoscaling", "ExecutePolicy")
def execute_policy(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"]) \
            if p.get("AutoScalingGroupName") else None
        row = _policy(s, ctx, g, p["PolicyName"])
        g = s.get(AutoScalingGroup, row.group_arn)
        if row.policy_type == "TargetTrackingScaling":
            raise exc.ValidationError("ExecutePolicy is not supported for a target tracking "
                                      "policy; its alarms drive it")
        breach = None
        if row.policy_type == "StepScaling":
            if p.get("MetricValue") is None or p.get("BreachThreshold") is None:
                raise exc.ValidationError("MetricValue and BreachThreshold are required to "
                                          "execute a StepScaling policy")
            breach = p["MetricValue"] - p["BreachThreshold"]
        honor = p.get("HonorCooldown", False)
        acted = policies.apply(s, g, row, f"a user request executed policy {row.name}", breach,
                               utcnow(), honor_cooldown=honor)
        if not acted and honor:
            raise exc.ScalingActivityInProgress(
                "The group is in its cooldown period and HonorCooldown was asked")
    return {}
