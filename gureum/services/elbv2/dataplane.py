"""From the store to a load balancer's data plane: the LoadBalancerSpec the agent runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import (
    Backend,
    Condition,
    Firewall,
    Frontend,
    HealthCheck,
    LoadBalancerSpec,
    Route,
    Rule,
    Server,
)
from gureum.services.ec2 import networks
from gureum.services.elbv2 import resources as res
from gureum.store import models
from gureum.store.acm_models import Certificate
from gureum.store.elbv2_models import Listener, ListenerRule, LoadBalancer, Target, TargetGroup


def backend_name(tg_arn: str) -> str:
    return "tg-" + tg_arn.rsplit("/", 1)[-1]


def server_name(target: Target) -> str:
    return f"{target.target_id}_{target.port}"


def _route(actions: list[dict[str, Any]], listener_port: int) -> Route:
    act = next(a for a in actions if a["Type"] in ("forward", "fixed-response", "redirect"))
    if act["Type"] == "forward":
        groups = act["ForwardConfig"]["TargetGroups"]
        return Route("forward", tuple((backend_name(g["TargetGroupArn"]), g.get("Weight", 1))
                                      for g in groups))
    if act["Type"] == "fixed-response":
        cfg = act["FixedResponseConfig"]
        return Route("fixed-response", status=int(cfg["StatusCode"]),
                     content_type=cfg.get("ContentType"), body=cfg.get("MessageBody"))
    cfg = act["RedirectConfig"]
    # AWS's placeholders, as HAProxy sample expressions.
    host = "%[req.hdr(host),field(1,:)]"
    fill = {"#{protocol}": "http", "#{host}": host, "#{port}": str(listener_port),
            "#{path}": "%[path,regsub(^/,)]", "#{query}": "%[query]"}

    def expand(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    protocol = cfg["Protocol"].lower() if cfg["Protocol"] != "#{protocol}" else "http"
    return Route("redirect", status=int(cfg["StatusCode"][-3:]), location=(
        protocol, expand(cfg["Host"]), expand(cfg["Port"]), expand(cfg["Path"]),
        expand(cfg["Query"])))


def _pems(s: Session, lst: Listener) -> list[str]:
    """Certificate, chain and key of each of an HTTPS listener's certificates, as HAProxy
    reads them; the default first."""
    out = []
    for item in lst.certificates:
        cert = s.get(Certificate, item["CertificateArn"])
        if cert is not None and not cert.pending:
            out.append("".join(part.rstrip("\n") + "\n" for part in (
                cert.certificate_pem, cert.chain_pem or "", cert.private_key_pem) if part))
    return out


def _condition(cond: dict[str, Any]) -> Condition:
    field = cond["Field"]
    if field == "query-string":
        return Condition(field, pairs=tuple((p.get("Key") or "", p["Value"]) for p in
                                            cond["QueryStringConfig"]["Values"]))
    if field == "http-header":
        cfg = cond["HttpHeaderConfig"]
        return Condition(field, tuple(cfg["Values"]), header=cfg["HttpHeaderName"])
    config = next(v for k, v in cond.items() if k.endswith("Config"))
    return Condition(field, tuple(config["Values"]))


def _servers(s: Session, tg: TargetGroup, now: dt.datetime) -> tuple[Server, ...]:
    servers = []
    for target in s.scalars(select(Target).where(Target.target_group_arn == tg.arn)
                            .order_by(Target.target_id, Target.port)):
        if target.draining_until is not None and target.draining_until <= now:
            continue
        if tg.target_type == "instance":
            inst = s.get(models.Instance, target.target_id)
            if inst is None or inst.state != "running":
                continue  # unused: Target.InvalidState
            address = inst.private_ip
        else:
            address = target.target_id
        servers.append(Server(server_name(target), address, target.port,
                              draining=target.draining_until is not None))
    return tuple(servers)


def _backend(s: Session, tg: TargetGroup, now: dt.datetime) -> Backend:
    hc = tg.health_check
    health = HealthCheck(
        protocol=hc["protocol"], port=None if hc["port"] == "traffic-port" else int(hc["port"]),
        path=hc.get("path"), interval=hc["interval"], timeout=hc["timeout"],
        healthy=hc["healthy"], unhealthy=hc["unhealthy"], matcher=hc.get("matcher"))
    attrs = tg.attributes
    sticky = int(attrs.get("stickiness.lb_cookie.duration_seconds", "86400")) \
        if attrs.get("stickiness.enabled") == "true" and tg.protocol != "TCP" else 0
    return Backend(backend_name(tg.arn), tg.protocol,
                   attrs.get("load_balancing.algorithm.type", "round_robin"), health,
                   _servers(s, tg, now), sticky_seconds=sticky,
                   slow_start=int(attrs.get("slow_start.duration_seconds", "0")))


def spec_for(s: Session, lb: LoadBalancer, firewall: Firewall | None,
             now: dt.datetime) -> LoadBalancerSpec:
    vpc = s.get(models.Vpc, lb.vpc_id)
    subnet = s.get(models.Subnet, lb.subnet_id)
    assert vpc is not None and subnet is not None
    listeners = list(s.scalars(select(Listener).where(Listener.load_balancer_arn == lb.arn)
                               .order_by(Listener.port)))
    frontends, actions = [], []
    for lst in listeners:
        rules = list(s.scalars(select(ListenerRule).where(ListenerRule.listener_arn == lst.arn)
                               .order_by(ListenerRule.priority)))
        pems = _pems(s, lst)
        frontends.append(Frontend(lst.port, lst.protocol, _route(lst.default_actions, lst.port),
                                  tuple(Rule(r.priority, tuple(_condition(c) for c in r.conditions),
                                             _route(r.actions, lst.port)) for r in rules),
                                  pem=pems[0] if pems else None, sni_pems=tuple(pems[1:])))
        actions += lst.default_actions + [a for r in rules for a in r.actions]
    tg_arns = sorted(res.target_groups_of_actions(actions))
    backends = tuple(_backend(s, tg, now) for arn in tg_arns
                     if (tg := s.get(TargetGroup, arn)) is not None)
    return LoadBalancerSpec(
        lb_id=lb.lb_id, vpc=networks.vpc_network(s, vpc), slot=lb.slot,
        subnet_cidr=subnet.cidr, private_ip=lb.private_ip, public_ip=lb.public_ip,
        mode="http" if lb.type == "application" else "tcp",
        idle_timeout=int(lb.attributes.get("idle_timeout.timeout_seconds", "60")),
        firewall=firewall, frontends=tuple(frontends), backends=backends)


def health_of(state: str, check: str, previous: str = "initial") -> tuple[str, str | None]:
    """HAProxy's server state and last check -> (AWS health state, reason code).
    `previous` is what was recorded before: a server that is down but passed its last
    check is on its way up, and keeps its state (initial or unhealthy) until it is up."""
    if check in ("", "INI") or state in ("INIT", "no"):
        return "initial", None
    if state in ("UP", "NOLB", "DRAIN"):
        return "healthy", None
    if check in ("L4TOUT", "L6TOUT", "L7TOUT"):
        return "unhealthy", "Target.Timeout"
    if check == "L7STS":
        return "unhealthy", "Target.ResponseCodeMismatch"
    if check in ("L4OK", "L6OK", "L7OK", "L7OKC") and previous == "initial":
        return "initial", None
    return "unhealthy", "Target.FailedHealthChecks"
