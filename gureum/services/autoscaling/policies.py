"""Applying scaling policies to a group: on an alarm in ALARM that names them (each
controller pass while it stays there, as AWS re-invokes them), or on ExecutePolicy.
Cooldowns (simple scaling) and instance warm-up (step and target tracking) keep one
breach from being acted on twice."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import resources as res
from gureum.services.autoscaling import scaling
from gureum.services.cloudwatch import alarms, history
from gureum.store.autoscaling_models import AutoScalingGroup, GroupInstance, ScalingPolicy
from gureum.store.cloudwatch_models import MetricAlarm
from gureum.store.db import Store
from gureum.store.models import utcnow


def run_alarm_actions(store: Store, group_arn: str) -> None:
    with store.read() as s:
        g = s.get(AutoScalingGroup, group_arn)
        if g is None or g.status or "AlarmNotification" in g.suspended_processes:
            return
        arns = set(s.scalars(select(ScalingPolicy.arn).where(
            ScalingPolicy.group_arn == group_arn, ScalingPolicy.enabled.is_(True))))
        if not arns:
            return
        firing = [(a.arn, action) for a in s.scalars(select(MetricAlarm).where(
            MetricAlarm.account_id == g.account_id, MetricAlarm.state == "ALARM",
            MetricAlarm.actions_enabled.is_(True)))
            for action in a.actions.get("AlarmActions", []) if action in arns]
    if not firing:
        return
    with store.write() as s:
        g = s.get(AutoScalingGroup, group_arn)
        now = utcnow()
        for alarm_arn, policy_arn in firing:
            alarm, policy = s.get(MetricAlarm, alarm_arn), s.get(ScalingPolicy, policy_arn)
            if g is None or alarm is None or policy is None or alarm.state != "ALARM":
                continue
            value = latest_value(s, alarm, now)
            if value is None:
                continue
            cause = (f"a monitor alarm {alarm.name} in state ALARM triggered policy "
                     f"{policy.name}")
            before = g.desired_capacity
            if policy.policy_type == "TargetTrackingScaling":
                _track(s, g, policy, high=alarm.comparison.startswith("Greater"),
                       value=value, now=now, cause=cause)
            else:
                apply(s, g, policy, cause, value - alarm.threshold, now, honor_cooldown=True)
            if g.desired_capacity != before:
                history.record(s, alarm, "Action", f"Successfully executed action {policy.arn}",
                               {"actionState": "Succeeded", "stateUpdateTimestamp": now,
                                "notificationResource": policy.arn,
                                "publishedMessage": cause}, now)


def latest_value(s: Session, alarm: MetricAlarm, now: dt.datetime) -> float | None:
    """The alarm's statistic over its newest complete period that has data."""
    present = [v for v in alarms.recent(s, alarm, now) if v is not None]
    return present[-1] if present else None


def _in_service(s: Session, g: AutoScalingGroup) -> int:
    return s.scalar(select(func.count()).select_from(GroupInstance).where(
        GroupInstance.group_arn == g.arn, GroupInstance.lifecycle_state == "InService",
        GroupInstance.health_status == "Healthy")) or 0


def warmup(g: AutoScalingGroup, policy: ScalingPolicy) -> int:
    given = policy.config.get("EstimatedInstanceWarmup")
    if given is None:
        given = g.default_instance_warmup
    return scaling.DEFAULT_WARMUP if given is None else given


def _since(when: dt.datetime | None, now: dt.datetime) -> float:
    return float("inf") if when is None else (now - when).total_seconds()


def _set(g: AutoScalingGroup, wanted: int, cause: str) -> bool:
    wanted = max(g.min_size, min(g.max_size, wanted))
    if wanted == g.desired_capacity:
        return False
    res.set_desired(g, wanted, cause)
    return True


def _track(s: Session, g: AutoScalingGroup, policy: ScalingPolicy, high: bool, value: float,
           now: dt.datetime, cause: str) -> None:
    config = policy.config["TargetTrackingConfiguration"]
    target = float(config["TargetValue"])
    serving = _in_service(s, g)
    if serving == 0:  # nothing measured the metric yet
        return
    wanted = scaling.target_capacity(serving, value, target)
    if high:
        if _since(policy.last_scale_out_at, now) < warmup(g, policy):
            return
        if wanted > g.desired_capacity and _set(g, wanted, cause):
            policy.last_scale_out_at = now
        return
    if config.get("DisableScaleIn"):
        return
    # Scale in conservatively: not while new capacity warms up, and at most once per the
    # low alarm's window, so every step down is judged on fresh data.
    metric = scaling.tracked_metric(g.name, config)
    if _since(policy.last_scale_out_at, now) < warmup(g, policy) or \
            _since(policy.last_scale_in_at, now) < metric.period * metric.low_periods:
        return
    if wanted < g.desired_capacity and _set(g, wanted, cause):
        policy.last_scale_in_at = now


def apply(s: Session, g: AutoScalingGroup, policy: ScalingPolicy, cause: str,
          breach: float | None, now: dt.datetime, honor_cooldown: bool) -> bool:
    """A simple or step policy's adjustment, now. False when a cooldown or warm-up held it."""
    config = policy.config
    adjustment_type = config.get("AdjustmentType") or "ChangeInCapacity"
    if policy.policy_type == "StepScaling":
        adjustment = scaling.step_adjustment(config.get("StepAdjustments") or [], breach or 0.0)
        if adjustment is None:
            return False
    else:
        adjustment = float(config.get("ScalingAdjustment") or 0)
    wanted = scaling.new_capacity(g.desired_capacity, adjustment_type, adjustment,
                                  config.get("MinAdjustmentMagnitude"))
    if policy.policy_type == "SimpleScaling":
        if honor_cooldown and g.cooldown_until is not None and g.cooldown_until > now:
            return False
        if _set(g, wanted, cause):
            g.cooldown_until = now + dt.timedelta(
                seconds=config.get("Cooldown") or g.default_cooldown)
        return True
    # Step scaling: a new step out waits for the last one's instances to warm up.
    last = policy.last_scale_out_at if wanted > g.desired_capacity else policy.last_scale_in_at
    if honor_cooldown and _since(last, now) < warmup(g, policy):
        return False
    before = g.desired_capacity
    if _set(g, wanted, cause):
        if g.desired_capacity > before:
            policy.last_scale_out_at = now
        else:
            policy.last_scale_in_at = now
    return True


def tracking_alarms(g: AutoScalingGroup, policy_arn: str, config: dict[str, Any],
                    suffix: str) -> list[MetricAlarm]:
    """The alarms a target tracking policy owns, named as AWS names them."""
    metric = scaling.tracked_metric(g.name, config)
    target = float(config["TargetValue"])
    now = utcnow()
    wanted = [("AlarmHigh", "GreaterThanThreshold", target, scaling.HIGH_PERIODS)]
    if not config.get("DisableScaleIn"):
        wanted.append(("AlarmLow", "LessThanThreshold", target * scaling.LOW_FRACTION,
                       metric.low_periods))
    out = []
    for kind, comparison, threshold, periods in wanted:
        name = f"TargetTracking-{g.name}-{kind}-{suffix}"
        out.append(MetricAlarm(
            arn=f"arn:aws:cloudwatch:{g.arn.split(':')[3]}:{g.account_id}:alarm:{name}",
            account_id=g.account_id, name=name,
            description=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}.",
            namespace=metric.namespace, metric_name=metric.name, dimensions=metric.dimensions,
            statistic=metric.statistic, period=metric.period, unit=metric.unit,
            evaluation_periods=periods, datapoints_to_alarm=periods, threshold=threshold,
            comparison=comparison, treat_missing_data="missing", actions_enabled=True,
            actions={"OKActions": [], "AlarmActions": [policy_arn],
                     "InsufficientDataActions": []},
            state="INSUFFICIENT_DATA", state_reason="Unchecked: Initial alarm creation",
            state_updated_at=now, updated_at=now))
    return out


def check(policy_type: str, p: dict[str, Any]) -> dict[str, Any]:
    """PutScalingPolicy's members for its type, validated as AWS does; what is stored."""
    if policy_type not in ("SimpleScaling", "StepScaling", "TargetTrackingScaling"):
        raise exc.ValidationError(f"Policy type {policy_type[:32]} is not offered: "
                                  "SimpleScaling, StepScaling or TargetTrackingScaling")
    keep = ("AdjustmentType", "MinAdjustmentMagnitude", "ScalingAdjustment", "Cooldown",
            "MetricAggregationType", "StepAdjustments", "EstimatedInstanceWarmup",
            "TargetTrackingConfiguration")
    config = {k: p[k] for k in keep if p.get(k) is not None}
    if p.get("PredictiveScalingConfiguration"):
        raise exc.ValidationError("Predictive scaling is not offered")
    if policy_type == "TargetTrackingScaling":
        tt = config.get("TargetTrackingConfiguration")
        if not tt:
            raise exc.ValidationError("TargetTrackingConfiguration is required for a "
                                      "TargetTrackingScaling policy")
        if tt.get("TargetValue") is None or float(tt["TargetValue"]) <= 0:
            raise exc.ValidationError("TargetValue must be greater than 0")
        for member in ("AdjustmentType", "ScalingAdjustment", "StepAdjustments", "Cooldown"):
            if member in config:
                raise exc.ValidationError(f"{member} is not allowed with TargetTrackingScaling")
        return config
    if "TargetTrackingConfiguration" in config:
        raise exc.ValidationError("TargetTrackingConfiguration is only for "
                                  "TargetTrackingScaling policies")
    adjustment_type = config.get("AdjustmentType")
    if adjustment_type is None:
        raise exc.ValidationError("AdjustmentType is required")
    if adjustment_type not in scaling.ADJUSTMENT_TYPES:
        raise exc.ValidationError(f"Invalid adjustment type {adjustment_type[:32]}")
    if config.get("MinAdjustmentMagnitude") is not None and \
            adjustment_type != "PercentChangeInCapacity":
        raise exc.ValidationError("MinAdjustmentMagnitude is only for PercentChangeInCapacity")
    if policy_type == "SimpleScaling":
        if config.get("ScalingAdjustment") is None:
            raise exc.ValidationError("ScalingAdjustment is required for SimpleScaling")
        if "StepAdjustments" in config:
            raise exc.ValidationError("StepAdjustments are only for StepScaling policies")
    else:
        if "ScalingAdjustment" in config or "Cooldown" in config:
            raise exc.ValidationError("ScalingAdjustment and Cooldown are not allowed with "
                                      "StepScaling")
        scaling.check_steps(config.get("StepAdjustments") or [])
        aggregation = config.get("MetricAggregationType", "Average")
        if aggregation not in ("Minimum", "Maximum", "Average"):
            raise exc.ValidationError(f"Invalid metric aggregation type {aggregation[:32]}")
    return config


def alarms_by_policy(s: Session, account_id: str) -> dict[str, list[dict[str, str]]]:
    """Policy ARN -> the alarms whose AlarmActions name it (one pass over the account)."""
    out: dict[str, list[dict[str, str]]] = {}
    for a in s.scalars(select(MetricAlarm).where(MetricAlarm.account_id == account_id)
                       .order_by(MetricAlarm.name)):
        for action_ in a.actions.get("AlarmActions", []):
            if ":scalingPolicy:" in action_:
                out.setdefault(action_, []).append({"AlarmName": a.name, "AlarmARN": a.arn})
    return out


def view(s: Session, policy: ScalingPolicy, group_name: str,
         alarms_of: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    if alarms_of is None:
        alarms_of = alarms_by_policy(s, policy.account_id)
    alarms = alarms_of.get(policy.arn, [])
    return {"AutoScalingGroupName": group_name, "PolicyName": policy.name,
            "PolicyARN": policy.arn, "PolicyType": policy.policy_type,
            **json.loads(json.dumps(policy.config)), "Alarms": alarms,
            "Enabled": policy.enabled}
