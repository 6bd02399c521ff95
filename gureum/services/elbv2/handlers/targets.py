"""Registering targets, deregistering them (they drain first) and their health, in AWS's
states and reason codes. Health itself is observed by the data plane; the load balancer
controller writes it on each target."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.store import models
from gureum.store.elbv2_models import Target, TargetGroup
from gureum.store.models import utcnow

MAX_TARGETS = 1000
DEAD_STATES = ("shutting-down", "terminated")


def _targets(tg: TargetGroup, p: dict[str, Any]) -> list[tuple[str, int]]:
    out = []
    for target in p["Targets"]:
        port = target.get("Port") or tg.port
        res.check_port(port, "Target port")
        out.append((target["Id"], port))
    return list(dict.fromkeys(out))


def _check_target(s: Any, ctx: RequestContext, tg: TargetGroup, target_id: str) -> None:
    if tg.target_type == "instance":
        inst = s.get(models.Instance, target_id)
        if inst is None or inst.account_id != ctx.account_id or inst.state in DEAD_STATES:
            raise exc.InvalidTarget(f"The following targets are not valid instances: {target_id[:64]}")
        if inst.vpc_id != tg.vpc_id:
            raise exc.InvalidTarget(
                f"The following targets are not in the target group's VPC '{tg.vpc_id}': "
                f"{target_id}")
        return
    vpc = s.get(models.Vpc, tg.vpc_id)
    try:
        inside = ipaddress.ip_address(target_id) in ipaddress.ip_network(vpc.cidr)
    except ValueError:
        inside = False
    if not inside:
        raise exc.InvalidTarget(f"The IP address '{target_id[:64]}' is not within the VPC "
                                f"'{tg.vpc_id}' CIDR {vpc.cidr}")


@action("elasticloadbalancing", "RegisterTargets")
def register_targets(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        tg = res.target_group(s, ctx.account_id, p["TargetGroupArn"])
        wanted = _targets(tg, p)
        for target_id, _ in wanted:
            _check_target(s, ctx, tg, target_id)
        current = {(t.target_id, t.port): t for t in res.targets_of(s, tg.arn)}
        if len(set(current) | set(wanted)) > MAX_TARGETS:
            raise exc.TooManyTargets(f"A target group holds at most {MAX_TARGETS} targets")
        for target_id, port in wanted:
            row = current.get((target_id, port))
            if row is None:
                s.add(Target(target_group_arn=tg.arn, target_id=target_id, port=port))
            elif row.draining_until is not None:  # registered again while draining
                row.draining_until = None
                row.registered_at, row.health, row.health_reason = utcnow(), "initial", None
    return {}


@action("elasticloadbalancing", "DeregisterTargets")
def deregister_targets(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        tg = res.target_group(s, ctx.account_id, p["TargetGroupArn"])
        current = {(t.target_id, t.port): t for t in res.targets_of(s, tg.arn)}
        wanted = _targets(tg, p)
        missing = [t for t, port in wanted if (t, port) not in current]
        if missing:
            raise exc.InvalidTarget(
                f"The following targets are not registered: {', '.join(missing)[:256]}")
        delay = int(tg.attributes.get("deregistration_delay.timeout_seconds", "300"))
        in_use = bool(res.load_balancers_of(s, tg.arn))
        for key in wanted:
            row = current[key]
            if delay == 0 or not in_use:
                s.delete(row)
            elif row.draining_until is None:
                row.draining_until = utcnow() + dt.timedelta(seconds=delay)
    return {}


def _health(s: Any, tg: TargetGroup, target: Target | None, target_id: str,
            in_use: bool) -> dict[str, str]:
    if target is None:
        return {"State": "unused", "Reason": "Target.NotRegistered",
                "Description": "Target is not registered to the target group"}
    if target.draining_until is not None:
        return {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                "Description": "Target deregistration is in progress"}
    if not in_use:
        return {"State": "unused", "Reason": "Target.NotInUse",
                "Description": "Target group is not configured to receive traffic from the "
                               "load balancer"}
    if tg.target_type == "instance":
        inst = s.get(models.Instance, target_id)
        if inst is None or inst.state != "running":
            return {"State": "unused", "Reason": "Target.InvalidState",
                    "Description": "Target is in the stopped state"}
    if target.health == "healthy":
        return {"State": "healthy"}
    if target.health == "unhealthy":
        reason = target.health_reason or "Target.FailedHealthChecks"
        descriptions = {"Target.Timeout": "Request timed out",
                        "Target.ResponseCodeMismatch": "Health checks failed with these codes",
                        "Target.FailedHealthChecks": "Health checks failed"}
        return {"State": "unhealthy", "Reason": reason,
                "Description": descriptions.get(reason, "Health checks failed")}
    return {"State": "initial", "Reason": "Elb.InitialHealthChecking",
            "Description": "Initial health checks in progress"}


@action("elasticloadbalancing", "DescribeTargetHealth")
def describe_target_health(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        tg = res.target_group(s, ctx.account_id, p["TargetGroupArn"])
        rows = {(t.target_id, t.port): t for t in s.scalars(
            select(Target).where(Target.target_group_arn == tg.arn)
            .order_by(Target.registered_at, Target.target_id))}
        keys = _targets(tg, p) if p.get("Targets") else list(rows)
        in_use = bool(res.load_balancers_of(s, tg.arn))
        hc_port = tg.health_check["port"]
        out = []
        for target_id, port in keys:
            out.append({
                "Target": {"Id": target_id, "Port": port,
                           "AvailabilityZone": ctx.cloud.availability_zone},
                "HealthCheckPort": str(port) if hc_port == "traffic-port" else str(hc_port),
                "TargetHealth": _health(s, tg, rows.get((target_id, port)), target_id, in_use),
            })
    return {"TargetHealthDescriptions": out}
