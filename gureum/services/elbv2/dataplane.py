"""From the store to a load balancer's data plane: the LoadBalancerSpec the agent runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import (
    Backend,
    Firewall,
    Frontend,
    HealthCheck,
    LoadBalancerSpec,
    Route,
    Server,
)
from gureum.services.ec2 import networks
from gureum.services.elbv2 import resources as res
from gureum.store import models
from gureum.store.elbv2_models import Listener, LoadBalancer, Target, TargetGroup


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
    return Backend(backend_name(tg.arn), tg.protocol,
                   tg.attributes.get("load_balancing.algorithm.type", "round_robin"), health,
                   _servers(s, tg, now))


def spec_for(s: Session, lb: LoadBalancer, firewall: Firewall | None,
             now: dt.datetime) -> LoadBalancerSpec:
    vpc = s.get(models.Vpc, lb.vpc_id)
    subnet = s.get(models.Subnet, lb.subnet_id)
    assert vpc is not None and subnet is not None
    listeners = list(s.scalars(select(Listener).where(Listener.load_balancer_arn == lb.arn)
                               .order_by(Listener.port)))
    frontends = tuple(Frontend(lst.port, lst.protocol, _route(lst.default_actions, lst.port))
                      for lst in listeners)
    tg_arns = sorted({arn for lst in listeners
                      for arn in res.target_groups_of_actions(lst.default_actions)})
    backends = tuple(_backend(s, tg, now) for arn in tg_arns
                     if (tg := s.get(TargetGroup, arn)) is not None)
    return LoadBalancerSpec(
        lb_id=lb.lb_id, vpc=networks.vpc_network(s, vpc), slot=lb.slot,
        subnet_cidr=subnet.cidr, private_ip=lb.private_ip, public_ip=lb.public_ip,
        mode="http" if lb.type == "application" else "tcp",
        idle_timeout=int(lb.attributes.get("idle_timeout.timeout_seconds", "60")),
        firewall=firewall, frontends=frontends, backends=backends)


def health_of(state: str, check: str) -> tuple[str, str | None]:
    """HAProxy's server state and last check -> (AWS health state, reason code)."""
    if check in ("", "INI") or state in ("INIT", "no"):
        return "initial", None
    if state in ("UP", "NOLB", "DRAIN"):
        return "healthy", None
    if check in ("L4TOUT", "L6TOUT", "L7TOUT"):
        return "unhealthy", "Target.Timeout"
    if check == "L7STS":
        return "unhealthy", "Target.ResponseCodeMismatch"
    return "unhealthy", "Target.FailedHealthChecks"
