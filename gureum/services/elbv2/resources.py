"""ELBv2 resources: ARNs and names, owned lookups with AWS's NotFound codes, and the
views DescribeX returns."""

from __future__ import annotations

import re
import secrets
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api import paging
from gureum.errors import ApiError
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2.zones import DNS_ZONE
from gureum.store.elbv2_models import Listener, ListenerRule, LoadBalancer, Target, TargetGroup

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
HOSTED_ZONE_ID = "Z0GUREUMELB0000000001"
HEALTH_DEFAULTS = {
    # AWS's defaults per target group protocol.
    "HTTP": {"protocol": "HTTP", "port": "traffic-port", "path": "/", "interval": 30,
             "timeout": 5, "healthy": 5, "unhealthy": 2, "matcher": "200"},
    "HTTPS": {"protocol": "HTTPS", "port": "traffic-port", "path": "/", "interval": 30,
              "timeout": 5, "healthy": 5, "unhealthy": 2, "matcher": "200"},
    "TCP": {"protocol": "TCP", "port": "traffic-port", "path": None, "interval": 30,
            "timeout": 10, "healthy": 5, "unhealthy": 2, "matcher": None},
}


def check_name(kind: str, name: str) -> None:
    if not _NAME.match(name or "") or name.lower().startswith("internal-"):
        raise exc.ValidationError(
            f"{kind} name '{name[:64]}' is not valid: up to 32 alphanumeric characters or "
            "hyphens, not beginning or ending with a hyphen nor beginning with 'internal-'")


def check_port(port: int | None, what: str = "Port") -> None:
    if port is None or not 1 <= port <= 65535:
        raise exc.ValidationError(f"{what} must be between 1 and 65535")


def new_id() -> str:
    return secrets.token_hex(8)


def arn(region: str, account_id: str, resource: str) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account_id}:{resource}"


def dns_name(name: str, lb_id: str, scheme: str, region: str) -> str:
    prefix = "internal-" if scheme == "internal" else ""
    return f"{prefix}{name}-{int(lb_id[:8], 16)}.{region}.{DNS_ZONE}"


# -- lookups -------------------------------------------------------------------------------

T = TypeVar("T", LoadBalancer, TargetGroup, Listener, ListenerRule)
NOT_FOUND: dict[type, tuple[type[ApiError], str]] = {
    LoadBalancer: (exc.LoadBalancerNotFound, "Load balancer"),
    TargetGroup: (exc.TargetGroupNotFound, "Target group"),
    Listener: (exc.ListenerNotFound, "Listener"),
    ListenerRule: (exc.RuleNotFound, "Rule"),
}


def owned(s: Session, model: type[T], account_id: str, arn: str) -> T:
    """The caller's resource by ARN, or that type's NotFound."""
    found = s.get(model, arn)
    if found is None or found.account_id != account_id:
        error, what = NOT_FOUND[model]
        raise error(f"{what} '{arn[:512]}' not found")
    return found


def load_balancer(s: Session, account_id: str, lb_arn: str) -> LoadBalancer:
    return owned(s, LoadBalancer, account_id, lb_arn)


def target_group(s: Session, account_id: str, tg_arn: str) -> TargetGroup:
    return owned(s, TargetGroup, account_id, tg_arn)


def listener(s: Session, account_id: str, listener_arn: str) -> Listener:
    return owned(s, Listener, account_id, listener_arn)


def rule(s: Session, account_id: str, rule_arn: str) -> ListenerRule:
    return owned(s, ListenerRule, account_id, rule_arn)


def by_names(s: Session, model: type[T], account_id: str, names: list[str]) -> list[T]:
    """The caller's resources of a type, oldest first; only `names` (in that order) when
    given, each missing one reported with the type's NotFound."""
    rows = list(s.scalars(select(model).where(model.account_id == account_id)
                          .order_by(model.created_at)))
    if not names:
        return rows
    found = {row.name: row for row in rows}
    missing = [n for n in names if n not in found]
    if missing:
        error, what = NOT_FOUND[model]
        raise error(f"{what}s not found: {', '.join(missing)[:256]}")
    return [found[n] for n in names]


def target_groups_of_actions(actions: list[dict[str, Any]]) -> list[str]:
    """Every target group ARN a list of actions forwards to."""
    arns = []
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            arns.append(action["TargetGroupArn"])
        for item in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            arns.append(item["TargetGroupArn"])
    return list(dict.fromkeys(arns))


def load_balancers_of(s: Session, tg_arn: str) -> list[str]:
    """ARNs of the load balancers whose listeners or rules forward to a target group."""
    found = []
    for lst in s.scalars(select(Listener)):
        rules = s.scalars(select(ListenerRule).where(ListenerRule.listener_arn == lst.arn))
        actions = lst.default_actions + [a for r in rules for a in r.actions]
        if tg_arn in target_groups_of_actions(actions):
            found.append(lst.load_balancer_arn)
    return list(dict.fromkeys(found))


# -- views ---------------------------------------------------------------------------------


def lb_view(lb: LoadBalancer, zone: str) -> dict[str, Any]:
    address: dict[str, Any] = {"IpAddress": lb.public_ip or lb.private_ip,
                               "PrivateIPv4Address": lb.private_ip}
    out: dict[str, Any] = {
        "LoadBalancerArn": lb.arn, "DNSName": lb.dns_name,
        "CanonicalHostedZoneId": HOSTED_ZONE_ID, "CreatedTime": lb.created_at,
        "LoadBalancerName": lb.name, "Scheme": lb.scheme, "VpcId": lb.vpc_id,
        "State": {"Code": lb.state, **({"Reason": lb.state_reason} if lb.state_reason else {})},
        "Type": lb.type, "IpAddressType": "ipv4",
        "AvailabilityZones": [{
            "ZoneName": zone, "SubnetId": subnet,
            "LoadBalancerAddresses": [address] if subnet == lb.subnet_id else []}
            for subnet in lb.subnet_ids],
    }
    if lb.type == "application" or lb.security_group_ids:
        out["SecurityGroups"] = list(lb.security_group_ids)
    return out


def tg_view(s: Session, tg: TargetGroup) -> dict[str, Any]:
    hc = tg.health_check
    out: dict[str, Any] = {
        "TargetGroupArn": tg.arn, "TargetGroupName": tg.name, "Protocol": tg.protocol,
        "Port": tg.port, "VpcId": tg.vpc_id, "HealthCheckProtocol": hc["protocol"],
        "HealthCheckPort": str(hc["port"]), "HealthCheckEnabled": True,
        "HealthCheckIntervalSeconds": hc["interval"], "HealthCheckTimeoutSeconds": hc["timeout"],
        "HealthyThresholdCount": hc["healthy"], "UnhealthyThresholdCount": hc["unhealthy"],
        "LoadBalancerArns": load_balancers_of(s, tg.arn), "TargetType": tg.target_type,
        "IpAddressType": "ipv4",
    }
    if hc.get("path"):
        out["HealthCheckPath"] = hc["path"]
    if hc.get("matcher"):
        out["Matcher"] = {"HttpCode": hc["matcher"]}
    if tg.protocol in ("HTTP", "HTTPS"):
        out["ProtocolVersion"] = "HTTP1"
    return out


def listener_view(lst: Listener) -> dict[str, Any]:
    out: dict[str, Any] = {"ListenerArn": lst.arn, "LoadBalancerArn": lst.load_balancer_arn,
                           "Port": lst.port, "Protocol": lst.protocol,
                           "DefaultActions": lst.default_actions}
    if lst.certificates:  # the default one only, as AWS (the others: DescribeListenerCertificates)
        out["Certificates"] = lst.certificates[:1]
    if lst.ssl_policy:
        out["SslPolicy"] = lst.ssl_policy
    return out


def targets_of(s: Session, tg_arn: str) -> list[Target]:
    return list(s.scalars(select(Target).where(Target.target_group_arn == tg_arn)))


# As AWS: a bad Marker or PageSize is a ValidationError.
page = paging.pager(lambda token: exc.ValidationError(f"The marker {token} is not valid"),
                    lambda n, lo, hi: exc.ValidationError(
                        f"PageSize must be between {lo} and {hi}"), lo=1, hi=400)
