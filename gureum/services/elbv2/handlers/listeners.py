"""Listeners and their actions: forward (one or weighted target groups), fixed-response
and redirect, checked against the load balancer's type as AWS checks them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.errors import HostError
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.services.elbv2.handlers.tags import delete_tags, put_tags, validate_tags
from gureum.store.acm_models import Certificate
from gureum.store.elbv2_models import Listener, ListenerRule, LoadBalancer

LISTENER_PROTOCOLS = {"application": ("HTTP", "HTTPS"), "network": ("TCP",)}
TARGET_PROTOCOLS = {"application": ("HTTP", "HTTPS"), "network": ("TCP",)}
MAX_LISTENERS = 50
DEFAULT_POLICY = "ELBSecurityPolicy-2016-08"
SSL_POLICIES = (DEFAULT_POLICY, "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", "ELBSecurityPolicy-TLS-1-2-2017-01",
                "ELBSecurityPolicy-TLS-1-2-Ext-2018-06", "ELBSecurityPolicy-FS-1-2-Res-2020-10")
CONTENT_TYPES = ("text/plain", "text/css", "text/html", "application/javascript",
                 "application/json")


def check_actions(s: Any, lb: LoadBalancer, actions: list[dict[str, Any]],
                  listener_arn: str | None = None) -> list[dict[str, Any]]:
    """Validated actions, in the shape DescribeListeners returns them."""
    if not actions:
        raise exc.ValidationError("At least one action must be specified")
    terminal = [a for a in actions if a.get("Type") in ("forward", "fixed-response", "redirect")]
    if len(terminal) != 1:
        raise exc.ValidationError("Exactly one forward, fixed-response or redirect action "
                                  "must be specified")
    out = []
    for order, act in enumerate(actions, start=1):
        kind = act.get("Type")
        clean: dict[str, Any] = {"Type": kind, "Order": act.get("Order", order)}
        if kind == "forward":
            groups = list((act.get("ForwardConfig") or {}).get("TargetGroups") or [])
            if act.get("TargetGroupArn"):
                if groups and [g["TargetGroupArn"] for g in groups] != [act["TargetGroupArn"]]:
                    raise exc.ValidationError(
                        "TargetGroupArn and ForwardConfig must name the same target group")
                groups = groups or [{"TargetGroupArn": act["TargetGroupArn"]}]
            if not groups:
                raise exc.ValidationError("A forward action needs a target group")
            if len(groups) > 5:
                raise exc.ValidationError("A forward action names at most 5 target groups")
            weighted = []
            for item in groups:
                tg = res.target_group(s, lb.account_id, item["TargetGroupArn"])
                if tg.vpc_id != lb.vpc_id:
                    raise exc.ValidationError(
                        f"Target group '{tg.arn}' is not in the load balancer's VPC")
                if tg.protocol not in TARGET_PROTOCOLS[lb.type]:
                    raise exc.IncompatibleProtocols(
                        f"Target group protocol {tg.protocol} cannot be used with a "
                        f"{lb.type} load balancer")
                users = set(res.load_balancers_of(s, tg.arn)) - {lb.arn}
                if users:
                    raise exc.ValidationError(
                        f"Target group '{tg.arn}' is already used by another load balancer")
                weight = item.get("Weight", 1)
                if not 0 <= weight <= 999:
                    raise exc.ValidationError("Target group weights are between 0 and 999")
                weighted.append({"TargetGroupArn": tg.arn, "Weight": weight})
            if len(weighted) == 1:
                clean["TargetGroupArn"] = weighted[0]["TargetGroupArn"]
            clean["ForwardConfig"] = {"TargetGroups": weighted,
                                      "TargetGroupStickinessConfig": {"Enabled": False}}
        elif kind == "fixed-response":
            if lb.type != "application":
                raise exc.InvalidLoadBalancerAction("Fixed responses need an application load balancer")
            cfg = act.get("FixedResponseConfig") or {}
            code = cfg.get("StatusCode", "")
            if not re.fullmatch(r"[245]\d\d", code):
                raise exc.ValidationError("A fixed response status code is 2XX, 4XX or 5XX")
            if cfg.get("ContentType") and cfg["ContentType"] not in CONTENT_TYPES:
                raise exc.ValidationError(f"Content type must be one of {', '.join(CONTENT_TYPES)}")
            if len(cfg.get("MessageBody", "")) > 1024:
                raise exc.ValidationError("A fixed response body is at most 1024 characters")
            clean["FixedResponseConfig"] = {k: v for k, v in cfg.items()
                                            if k in ("StatusCode", "ContentType", "MessageBody")}
        elif kind == "redirect":
            if lb.type != "application":
                raise exc.InvalidLoadBalancerAction("Redirects need an application load balancer")
            cfg = act.get("RedirectConfig") or {}
            if cfg.get("StatusCode") not in ("HTTP_301", "HTTP_302"):
                raise exc.ValidationError("A redirect status code is HTTP_301 or HTTP_302")
            clean["RedirectConfig"] = {
                "Protocol": cfg.get("Protocol", "#{protocol}"), "Port": cfg.get("Port", "#{port}"),
                "Host": cfg.get("Host", "#{host}"), "Path": cfg.get("Path", "/#{path}"),
                "Query": cfg.get("Query", "#{query}"), "StatusCode": cfg["StatusCode"]}
        else:
            raise exc.InvalidLoadBalancerAction(f"Action type '{kind}' is not supported here")
        out.append(clean)
    return out


def _protocol_and_port(lb: LoadBalancer, p: dict[str, Any], current: Listener | None) -> tuple[str, int]:
    protocol = p.get("Protocol") or (current.protocol if current else None)
    port = p.get("Port") or (current.port if current else None)
    if protocol is None or port is None:
        raise exc.ValidationError("A listener needs a protocol and a port")
    if protocol not in LISTENER_PROTOCOLS[lb.type]:
        raise exc.UnsupportedProtocol(
            f"Protocol '{protocol}' is not supported for a {lb.type} load balancer here "
            f"(use {' or '.join(LISTENER_PROTOCOLS[lb.type])})")
    res.check_port(port)
    return protocol, port


def _check_published(ctx: RequestContext, s: Any, lb: LoadBalancer, port: int) -> None:
    """On a host with one address, an internet-facing listener takes that host port: no
    other load balancer may hold it, nor any program on the host."""
    if not ctx.cloud.config.publish_address or lb.scheme != "internet-facing":
        return
    holder = s.scalar(select(LoadBalancer.name).join(
        Listener, Listener.load_balancer_arn == LoadBalancer.arn).where(
        Listener.port == port, LoadBalancer.scheme == "internet-facing",
        LoadBalancer.arn != lb.arn))
    if holder is not None:
        raise exc.InvalidConfigurationRequest(
            f"Port {port} of the host is already published by load balancer '{holder}'")
    try:
        busy = ctx.cloud.agent is not None and ctx.cloud.agent.host_port_in_use(port)
    except HostError:
        busy = False  # the host cannot be asked now; the store's check above still holds
    if busy:
        raise exc.InvalidConfigurationRequest(
            f"Port {port} is already in use on the host ({ctx.cloud.config.publish_address})")


def _tls(s: Any, lb: LoadBalancer, protocol: str, p: dict[str, Any],
         current: Listener | None) -> tuple[list[dict[str, Any]], str | None]:
    """(certificates, SSL policy) of an HTTPS listener; none for others."""
    if protocol != "HTTPS":
        return [], None
    certificates = p.get("Certificates") or (current.certificates if current else [])
    if len(certificates) != 1 or not certificates[0].get("CertificateArn"):
        raise exc.ValidationError("An HTTPS listener needs exactly one default certificate")
    arn = certificates[0]["CertificateArn"]
    usable_certificate(s, lb.account_id, arn)
    policy = p.get("SslPolicy") or (current.ssl_policy if current else None) or DEFAULT_POLICY
    if policy not in SSL_POLICIES:
        raise exc.SSLPolicyNotFound(f"SSL policy '{policy[:128]}' not found")
    # The listener's other certificates (AddListenerCertificates) stay; the default leads.
    others = [c for c in (current.certificates[1:] if current else [])
              if c["CertificateArn"] != arn]
    return [{"CertificateArn": arn}, *others], policy


def usable_certificate(s: Any, account_id: str, arn: str) -> Certificate:
    """An issued certificate of the account's, for a listener to serve."""
    cert = s.get(Certificate, arn)
    if cert is None or cert.account_id != account_id:
        raise exc.CertificateNotFound(f"Certificate '{arn[:512]}' not found")
    if cert.pending:
        raise exc.InvalidConfigurationRequest(
            f"Certificate '{arn[:512]}' is pending validation: it has not been issued yet")
    return cert


@action("elasticloadbalancing", "CreateListener")
def create_listener(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = validate_tags(p.get("Tags") or [])
    with ctx.cloud.store.write() as s:
        lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
        protocol, port = _protocol_and_port(lb, p, None)
        certificates, policy = _tls(s, lb, protocol, p, None)
        _check_published(ctx, s, lb, port)
        listeners = list(s.scalars(select(Listener).where(Listener.load_balancer_arn == lb.arn)))
        same = [lst for lst in listeners if lst.port == port]
        actions = check_actions(s, lb, p["DefaultActions"])
        if same:
            if same[0].protocol == protocol and same[0].default_actions == actions:
                return {"Listeners": [res.listener_view(same[0])]}  # idempotent, as on AWS
            raise exc.DuplicateListener(f"A listener already exists on port {port}")
        if len(listeners) >= MAX_LISTENERS:
            raise exc.TooManyListeners(f"A load balancer has at most {MAX_LISTENERS} listeners")
        lst = Listener(arn=res.arn(ctx.region, ctx.account_id, "listener/" + lb.arn.split(
            "loadbalancer/", 1)[1] + "/" + res.new_id()), load_balancer_arn=lb.arn,
            account_id=ctx.account_id, protocol=protocol, port=port, default_actions=actions,
            certificates=certificates, ssl_policy=policy)
        s.add(lst)
        s.flush()
        put_tags(s, ctx.account_id, lst.arn, tags)
        return {"Listeners": [res.listener_view(lst)]}


@action("elasticloadbalancing", "DescribeListeners")
def describe_listeners(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:

    with ctx.cloud.store.read() as s:
        if p.get("ListenerArns"):
            rows = [res.listener(s, ctx.account_id, a) for a in p["ListenerArns"]]
        elif p.get("LoadBalancerArn"):
            lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
            rows = list(s.scalars(select(Listener).where(Listener.load_balancer_arn == lb.arn)
                                  .order_by(Listener.port)))
        else:
            raise exc.ValidationError("Specify a load balancer ARN or listener ARNs")
        views = [res.listener_view(lst) for lst in rows]
    chunk, marker = res.page(views, p.get("PageSize"), p.get("Marker"))
    return {"Listeners": chunk, "NextMarker": marker}


@action("elasticloadbalancing", "ModifyListener")
def modify_listener(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lst = res.listener(s, ctx.account_id, p["ListenerArn"])
        lb = res.load_balancer(s, ctx.account_id, lst.load_balancer_arn)
        protocol, port = _protocol_and_port(lb, p, lst)
        lst.certificates, lst.ssl_policy = _tls(s, lb, protocol, p, lst)
        if port != lst.port:
            _check_published(ctx, s, lb, port)
        if port != lst.port and s.scalar(select(Listener).where(
                Listener.load_balancer_arn == lb.arn, Listener.port == port)) is not None:
            raise exc.DuplicateListener(f"A listener already exists on port {port}")
        if p.get("DefaultActions"):
            lst.default_actions = check_actions(s, lb, p["DefaultActions"], lst.arn)
        lst.protocol, lst.port = protocol, port
        return {"Listeners": [res.listener_view(lst)]}


@action("elasticloadbalancing", "DeleteListener")
def delete_listener(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lst = res.listener(s, ctx.account_id, p["ListenerArn"])
        rules = list(s.scalars(select(ListenerRule).where(ListenerRule.listener_arn == lst.arn)))
        for rule in rules:
            s.delete(rule)
        s.flush()
        delete_tags(s, [lst.arn, *(r.arn for r in rules)])
        s.delete(lst)
    return {}
