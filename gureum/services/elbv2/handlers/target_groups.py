"""Target groups: protocol, port, VPC and the full health check; their attributes."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.services.elbv2.handlers.tags import delete_tags, put_tags, validate_tags
from gureum.store import models
from gureum.store.elbv2_models import TargetGroup

PROTOCOLS = ("HTTP", "HTTPS", "TCP")
_MATCHER = re.compile(r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")
ATTRIBUTE_DEFAULTS = {
    "deregistration_delay.timeout_seconds": "300",
    "stickiness.enabled": "false",
    "stickiness.type": "lb_cookie",
    "stickiness.lb_cookie.duration_seconds": "86400",
    "load_balancing.algorithm.type": "round_robin",
    "slow_start.duration_seconds": "0",
}
HEALTH_MEMBERS = {  # request member -> (stored key, low, high)
    "HealthCheckIntervalSeconds": ("interval", 5, 300),
    "HealthCheckTimeoutSeconds": ("timeout", 2, 120),
    "HealthyThresholdCount": ("healthy", 2, 10),
    "UnhealthyThresholdCount": ("unhealthy", 2, 10),
}


def health_check(p: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The health check after applying the request's members to `current`, validated."""
    hc = dict(current)
    if "HealthCheckProtocol" in p:
        if p["HealthCheckProtocol"] not in PROTOCOLS:
            raise exc.ValidationError(f"Health check protocol '{p['HealthCheckProtocol']}' "
                                      "is not supported")
        hc["protocol"] = p["HealthCheckProtocol"]
        if hc["protocol"] != "TCP":
            hc.setdefault("path", "/")
            hc["path"] = hc["path"] or "/"
            hc["matcher"] = hc.get("matcher") or "200"
    if "HealthCheckPort" in p:
        port = p["HealthCheckPort"]
        if port != "traffic-port" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise exc.ValidationError("Health check port must be 'traffic-port' or 1-65535")
        hc["port"] = port
    if "HealthCheckPath" in p:
        path = p["HealthCheckPath"]
        if not path.startswith("/") or len(path) > 1024:
            raise exc.ValidationError("Health check path must begin with '/' (up to 1024 chars)")
        hc["path"] = path
    for member, (key, low, high) in HEALTH_MEMBERS.items():
        if member in p:
            if not low <= p[member] <= high:
                raise exc.ValidationError(f"{member} must be between {low} and {high}")
            hc[key] = p[member]
    if "Matcher" in p:
        code = (p["Matcher"] or {}).get("HttpCode", "")
        if not _MATCHER.match(code) or any(not 200 <= int(c) <= 499
                                           for c in re.findall(r"\d{3}", code)):
            raise exc.ValidationError(f"Matcher HttpCode '{code[:64]}' is not valid (200-499)")
        hc["matcher"] = code
    if hc["timeout"] >= hc["interval"]:
        raise exc.ValidationError("Health check timeout must be smaller than the interval")
    if hc["protocol"] == "TCP":
        hc["path"], hc["matcher"] = None, None
    return hc


@action("elasticloadbalancing", "CreateTargetGroup")
def create_target_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["Name"]
    res.check_name("Target group", name)
    target_type = p.get("TargetType", "instance")
    if target_type not in ("instance", "ip"):
        raise exc.ValidationError(f"Target type '{target_type}' is not supported here")
    protocol = p.get("Protocol")
    if protocol not in PROTOCOLS:
        raise exc.ValidationError(f"Protocol '{protocol}' is not supported (use HTTP, HTTPS, TCP)")
    if p.get("Port") is None or not p.get("VpcId"):
        raise exc.ValidationError("A port and a VPC ID must be specified")
    res.check_port(p["Port"])
    hc = health_check(p, dict(res.HEALTH_DEFAULTS[protocol]))
    tags = validate_tags(p.get("Tags") or [])
    with ctx.cloud.store.write() as s:
        vpc = s.get(models.Vpc, p["VpcId"])
        if vpc is None or vpc.account_id != ctx.account_id:
            raise exc.ValidationError(f"The VPC ID '{p['VpcId'][:64]}' is not found")
        existing = s.scalar(select(TargetGroup).where(TargetGroup.account_id == ctx.account_id,
                                                      TargetGroup.name == name))
        if existing is not None:
            same = (existing.protocol, existing.port, existing.vpc_id, existing.target_type,
                    existing.health_check) == (protocol, p["Port"], vpc.vpc_id, target_type, hc)
            if not same:
                raise exc.DuplicateTargetGroupName(
                    f"A target group with the same name '{name}' exists, but with different settings")
            return {"TargetGroups": [res.tg_view(s, existing)]}  # AWS: idempotent create
        tg_id = res.new_id()
        tg = TargetGroup(arn=res.arn(ctx.region, ctx.account_id, f"targetgroup/{name}/{tg_id}"),
                         account_id=ctx.account_id, name=name, protocol=protocol,
                         port=p["Port"], vpc_id=vpc.vpc_id, target_type=target_type,
                         health_check=hc, attributes=dict(ATTRIBUTE_DEFAULTS))
        s.add(tg)
        s.flush()
        put_tags(s, ctx.account_id, tg.arn, tags)
        return {"TargetGroups": [res.tg_view(s, tg)]}


@action("elasticloadbalancing", "DescribeTargetGroups")
def describe_target_groups(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    arns, names = p.get("TargetGroupArns") or [], p.get("Names") or []
    with ctx.cloud.store.read() as s:
        rows = [res.target_group(s, ctx.account_id, a) for a in arns] if arns else \
            res.by_names(s, TargetGroup, ctx.account_id, names)
        if p.get("LoadBalancerArn"):
            lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
            rows = [tg for tg in rows if lb.arn in res.load_balancers_of(s, tg.arn)]
        views = [res.tg_view(s, tg) for tg in rows]
    chunk, marker = res.page(views, p.get("PageSize"), p.get("Marker"))
    return {"TargetGroups": chunk, "NextMarker": marker}


@action("elasticloadbalancing", "ModifyTargetGroup")
def modify_target_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        tg = res.target_group(s, ctx.account_id, p["TargetGroupArn"])
        tg.health_check = health_check(p, tg.health_check)
        return {"TargetGroups": [res.tg_view(s, tg)]}


@action("elasticloadbalancing", "DeleteTargetGroup")
def delete_target_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        tg = s.get(TargetGroup, p["TargetGroupArn"])
        if tg is None or tg.account_id != ctx.account_id:
            return {}
        users = res.load_balancers_of(s, tg.arn)
        if users:
            raise exc.ResourceInUse(
                f"Target group '{tg.arn}' is currently in use by a listener or a rule")
        for target in res.targets_of(s, tg.arn):
            s.delete(target)
        s.flush()
        delete_tags(s, [tg.arn])
        s.delete(tg)
    return {}


def _check_attribute(key: str, value: str) -> None:
    if key not in ATTRIBUTE_DEFAULTS:
        raise exc.ValidationError(f"Target group attribute key '{key[:128]}' is not recognized")
    numeric = {"deregistration_delay.timeout_seconds": (0, 3600),
               "stickiness.lb_cookie.duration_seconds": (1, 604800),
               "slow_start.duration_seconds": (0, 900)}
    if key in numeric:
        low, high = numeric[key]
        if not (value.isdigit() and low <= int(value) <= high):
            raise exc.ValidationError(f"'{key}' must be between {low} and {high}")
        if key == "slow_start.duration_seconds" and 0 < int(value) < 30:
            raise exc.ValidationError("slow_start.duration_seconds is 0 or between 30 and 900")
    allowed = {"stickiness.enabled": ("true", "false"), "stickiness.type": ("lb_cookie",),
               "load_balancing.algorithm.type": ("round_robin", "least_outstanding_requests")}
    if key in allowed and value not in allowed[key]:
        raise exc.ValidationError(f"'{key}' must be one of {', '.join(allowed[key])}")


@action("elasticloadbalancing", "DescribeTargetGroupAttributes")
def describe_target_group_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        tg = res.target_group(s, ctx.account_id, p["TargetGroupArn"])
        return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(tg.attributes.items())]}


@action("elasticloadbalancing", "ModifyTargetGroupAttributes")
def modify_target_group_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        tg = res.target_group(s, ctx.account_id, p["TargetGroupArn"])
        changes = {a["Key"]: a["Value"] for a in p["Attributes"]}
        for key, value in changes.items():
            _check_attribute(key, value)
        if tg.protocol == "TCP" and changes.get("load_balancing.algorithm.type",
                                                "round_robin") != "round_robin":
            raise exc.InvalidConfigurationRequest("TCP target groups balance round robin only")
        tg.attributes = {**tg.attributes, **changes}
        return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(tg.attributes.items())]}

