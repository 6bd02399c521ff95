"""Load balancers: create (an address in the VPC, a public one when internet-facing),
describe, delete, attributes, security groups and subnets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.errors import ApiError
from gureum.services.ec2 import allocation, networks
from gureum.services.ec2 import security_groups as sg
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.services.elbv2.handlers.tags import delete_tags, put_tags, validate_tags
from gureum.store import models
from gureum.store.elbv2_models import Listener, ListenerRule, LoadBalancer

MAX_LOAD_BALANCERS = 50
ATTRIBUTE_DEFAULTS = {
    "application": {"idle_timeout.timeout_seconds": "60",
                    "deletion_protection.enabled": "false",
                    "routing.http.drop_invalid_header_fields.enabled": "false",
                    "routing.http2.enabled": "true",
                    "access_logs.s3.enabled": "false"},
    "network": {"deletion_protection.enabled": "false",
                "load_balancing.cross_zone.enabled": "false",
                "access_logs.s3.enabled": "false"},
}


def _subnets(ctx: RequestContext, s: Any, p: dict[str, Any]) -> list[models.Subnet]:
    ids = list(p.get("Subnets") or []) + [m["SubnetId"] for m in p.get("SubnetMappings") or []
                                           if m.get("SubnetId")]
    if not ids:
        raise exc.ValidationError("At least one subnet must be specified")
    found = []
    for subnet_id in dict.fromkeys(ids):
        subnet = s.get(models.Subnet, subnet_id)
        if subnet is None or subnet.account_id != ctx.account_id:
            raise exc.SubnetNotFound(f"The subnet ID '{subnet_id[:64]}' is not valid")
        found.append(subnet)
    if len({subnet.vpc_id for subnet in found}) > 1:
        raise exc.InvalidSubnet("The subnets must all belong to the same VPC")
    # As on AWS: one subnet per Availability Zone, so one address per zone. (AWS also asks
    # an ALB for two zones; a gureum region may have one, so one suffices here.)
    if len({subnet.availability_zone for subnet in found}) < len(found):
        raise exc.InvalidConfigurationRequest(
            "A load balancer cannot be attached to multiple subnets in the same "
            "Availability Zone")
    return found


def _groups(ctx: RequestContext, s: Any, vpc_id: str, group_ids: list[str]) -> list[str]:
    for group_id in group_ids:
        try:
            group = sg.resolve_group(s, ctx.account_id, group_id, None)
        except ApiError:
            raise exc.InvalidSecurityGroup(
                f"Security group '{group_id[:64]}' does not exist") from None
        if group.vpc_id != vpc_id:
            raise exc.InvalidSecurityGroup(
                f"Security group '{group_id[:64]}' does not belong to VPC '{vpc_id}'")
    return list(dict.fromkeys(group_ids))


@action("elasticloadbalancing", "CreateLoadBalancer")
def create_load_balancer(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name, kind = p["Name"], p.get("Type", "application")
    scheme = p.get("Scheme", "internet-facing")
    res.check_name("Load balancer", name)
    if kind not in ("application", "network"):
        raise exc.ValidationError(f"Load balancer type '{kind}' is not supported here")
    if p.get("IpAddressType", "ipv4") != "ipv4":
        raise exc.ValidationError("Only the ipv4 address type is supported")
    tags = validate_tags(p.get("Tags") or [])
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        existing = s.scalar(select(LoadBalancer).where(
            LoadBalancer.account_id == ctx.account_id, LoadBalancer.name == name))
        subnets = _subnets(ctx, s, p)
        vpc_id = subnets[0].vpc_id
        if existing is not None:
            raise exc.DuplicateLoadBalancerName(f"A load balancer with the same name '{name}' exists")
        held = len(list(s.scalars(select(LoadBalancer.arn).where(
            LoadBalancer.account_id == ctx.account_id))))
        if held >= MAX_LOAD_BALANCERS:
            raise exc.TooManyLoadBalancers("The quota of load balancers has been reached")
        groups = p.get("SecurityGroups")
        if kind == "application" and not groups:
            groups = [ctx.cloud.default_group_id(ctx.account_id)] \
                if vpc_id == ctx.cloud.default_vpc_id(ctx.account_id) else \
                [g.group_id for g in s.scalars(select(models.SecurityGroup).where(
                    models.SecurityGroup.vpc_id == vpc_id,
                    models.SecurityGroup.name == "default"))]
        groups = _groups(ctx, s, vpc_id, groups or [])
        home = subnets[0]
        private_ip = next(allocation.free_private_ips(s, vpc_id, home.cidr), None)
        slot = next(allocation.free_slots(s), None)
        if private_ip is None or slot is None:
            raise exc.InvalidSubnet(f"Subnet '{home.subnet_id}' has no free address")
        public_ip = None
        if scheme == "internet-facing":
            if home.subnet_id not in networks.public_subnet_ids(s, vpc_id):
                raise exc.InvalidSubnet(
                    f"Subnet '{home.subnet_id}' has no route to an internet gateway; an "
                    "internet-facing load balancer needs one (or use Scheme=internal)")
            public_ip = next(allocation.free_public_ips(s, ctx.cloud.config.public_pool), None)
            if public_ip is None:
                raise exc.InvalidConfigurationRequest("The public address pool is exhausted")
        lb_id = res.new_id()
        short = "app" if kind == "application" else "net"
        lb = LoadBalancer(
            arn=res.arn(ctx.region, ctx.account_id, f"loadbalancer/{short}/{name}/{lb_id}"),
            lb_id=lb_id, account_id=ctx.account_id, name=name, type=kind, scheme=scheme,
            vpc_id=vpc_id, subnet_ids=[x.subnet_id for x in subnets],
            security_group_ids=groups, subnet_id=home.subnet_id, slot=slot,
            private_ip=private_ip, public_ip=public_ip,
            dns_name=res.dns_name(name, lb_id, scheme, ctx.region),
            attributes=dict(ATTRIBUTE_DEFAULTS[kind]))
        s.add(lb)
        s.flush()
        put_tags(s, ctx.account_id, lb.arn, tags)
        view = res.lb_view(lb, ctx.cloud.availability_zone)
    return {"LoadBalancers": [view]}


@action("elasticloadbalancing", "DescribeLoadBalancers")
def describe_load_balancers(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    arns, names = p.get("LoadBalancerArns") or [], p.get("Names") or []
    if arns and names:
        raise exc.ValidationError("Load balancer ARNs and names cannot be given together")
    with ctx.cloud.store.read() as s:
        rows = [res.load_balancer(s, ctx.account_id, a) for a in arns] if arns else \
            res.by_names(s, LoadBalancer, ctx.account_id, names)
        views = [res.lb_view(lb, ctx.cloud.availability_zone) for lb in rows]
    chunk, marker = res.page(views, p.get("PageSize"), p.get("Marker"))
    return {"LoadBalancers": chunk, "NextMarker": marker}


@action("elasticloadbalancing", "DeleteLoadBalancer")
def delete_load_balancer(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lb = s.get(LoadBalancer, p["LoadBalancerArn"])
        if lb is None or lb.account_id != ctx.account_id:
            return {}  # as on AWS: deleting what is gone succeeds
        if lb.attributes.get("deletion_protection.enabled") == "true":
            raise exc.OperationNotPermitted(
                f"Load balancer '{lb.arn}' cannot be deleted because deletion protection is enabled")
        listeners = list(s.scalars(select(Listener).where(Listener.load_balancer_arn == lb.arn)))
        for lst in listeners:
            rules = list(s.scalars(select(ListenerRule).where(ListenerRule.listener_arn == lst.arn)))
            for rule in rules:
                s.delete(rule)
            s.flush()
            s.delete(lst)
        s.flush()
        delete_tags(s, [lb.arn, *(lst.arn for lst in listeners)])
        s.delete(lb)
    return {}


def _attributes_out(attributes: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(attributes.items())]


@action("elasticloadbalancing", "DescribeLoadBalancerAttributes")
def describe_load_balancer_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
        return {"Attributes": _attributes_out(lb.attributes)}


def _check_attribute(kind: str, key: str, value: str) -> None:
    if key not in ATTRIBUTE_DEFAULTS[kind]:
        raise exc.ValidationError(f"Load balancer attribute key '{key[:128]}' is not recognized")
    if key.endswith(".enabled") and value not in ("true", "false"):
        raise exc.ValidationError(f"Attribute '{key}' must be 'true' or 'false'")
    if key == "idle_timeout.timeout_seconds" and not (value.isdigit() and 1 <= int(value) <= 4000):
        raise exc.ValidationError("idle_timeout.timeout_seconds must be between 1 and 4000")
    if key == "access_logs.s3.enabled" and value == "true":
        raise exc.ValidationError("Access logs to S3 are not offered here")


@action("elasticloadbalancing", "ModifyLoadBalancerAttributes")
def modify_load_balancer_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
        changes = {a["Key"]: a["Value"] for a in p["Attributes"]}
        for key, value in changes.items():
            _check_attribute(lb.type, key, value)
        lb.attributes = {**lb.attributes, **changes}
        return {"Attributes": _attributes_out(lb.attributes)}


@action("elasticloadbalancing", "SetSecurityGroups")
def set_security_groups(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
        if lb.type == "network" and not lb.security_group_ids and p["SecurityGroups"]:
            raise exc.InvalidConfigurationRequest(
                "Security groups can be added to a network load balancer only at creation")
        lb.security_group_ids = _groups(ctx, s, lb.vpc_id, p["SecurityGroups"])
        return {"SecurityGroupIds": list(lb.security_group_ids)}


@action("elasticloadbalancing", "SetSubnets")
def set_subnets(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lb = res.load_balancer(s, ctx.account_id, p["LoadBalancerArn"])
        subnets = _subnets(ctx, s, p)
        if subnets[0].vpc_id != lb.vpc_id:
            raise exc.InvalidSubnet("The subnets must belong to the load balancer's VPC")
        ids = [x.subnet_id for x in subnets]
        if lb.subnet_id not in ids:
            raise exc.InvalidConfigurationRequest(
                f"Subnet '{lb.subnet_id}' holds the load balancer's address and cannot be removed")
        lb.subnet_ids = ids
        view = res.lb_view(lb, ctx.cloud.availability_zone)
    return {"AvailabilityZones": view["AvailabilityZones"], "IpAddressType": "ipv4"}
