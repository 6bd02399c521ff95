"""Security group actions. Every change wakes the firewall controller, which rewrites the
affected instances' rules in their netns within milliseconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import tag_list
from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer


@action("ec2", "CreateSecurityGroup")
def create_security_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name, description = p["GroupName"], p["Description"]
    vpc_id = p.get("VpcId") or ctx.cloud.default_vpc_id(ctx.account_id)
    if name == "default":
        raise exc.InvalidGroupReserved("The security group 'default' is reserved")
    if not 1 <= len(name) <= 255 or name.lower().startswith("sg-"):
        raise exc.InvalidParameterValue(
            f"Invalid security group name '{name[:64]}': 1-255 characters, not starting with sg-")
    if len(description) > 255:
        raise exc.InvalidParameterValue("Description exceeds 255 characters")
    for parameter, value in (("GroupName", name), ("GroupDescription", description)):
        if not value.isascii():
            raise exc.InvalidParameterValue(
                f"Value ({value[:64]}) for parameter {parameter} is invalid. Character sets "
                "beyond ASCII are not supported.")
    tags = common.tags_from_specs(p, "security-group")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = s.get(models.Vpc, vpc_id)
        if vpc is None or vpc.account_id != ctx.account_id:
            raise exc.InvalidVpcIDNotFound(f"The vpc ID '{vpc_id[:64]}' does not exist")
        if s.scalar(select(models.SecurityGroup).where(
                models.SecurityGroup.account_id == ctx.account_id,
                models.SecurityGroup.vpc_id == vpc_id, models.SecurityGroup.name == name)):
            raise exc.InvalidGroupDuplicate(
                f"The security group '{name}' already exists for VPC '{vpc_id}'")
        group = models.SecurityGroup(group_id=ids.new("sg"), account_id=ctx.account_id,
                                     vpc_id=vpc_id, name=name, description=description)
        s.add(group)
        s.flush()
        # As on AWS: a new group may send anywhere until its egress rule is revoked.
        sg.add_rule(s, ctx.account_id, group.group_id,
                    sg.RuleSpec("-1", -1, -1, "0.0.0.0/0", None, ""), egress=True)
        common.put_tags(s, ctx.account_id, group.group_id, tags)
    return {"GroupId": group.group_id, "Tags": tag_list(dict(tags)) or None,
            "SecurityGroupArn": _arn(ctx, group.group_id)}


def _arn(ctx: RequestContext, group_id: str) -> str:
    return f"arn:aws:ec2:{ctx.cloud.config.region}:{ctx.account_id}:security-group/{group_id}"


FILTERS = {"group-id", "group-name", "description", "vpc-id", "owner-id",
           "ip-permission.protocol", "ip-permission.from-port", "ip-permission.to-port",
           "ip-permission.cidr", "ip-permission.group-id", "egress.ip-permission.cidr",
           "ip-permission.ipv6-cidr", "egress.ip-permission.ipv6-cidr"}


@action("ec2", "DescribeSecurityGroups")
def describe_security_groups(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), FILTERS)
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.read() as s:
        groups = [sg.resolve_group(s, ctx.account_id, gid, None) for gid in p.get("GroupIds") or []]
        groups += [sg.resolve_group(s, ctx.account_id, None, n) for n in p.get("GroupNames") or []]
        if not groups and not p.get("GroupIds") and not p.get("GroupNames"):
            groups = list(s.scalars(select(models.SecurityGroup).where(
                models.SecurityGroup.account_id == ctx.account_id).order_by(models.SecurityGroup.name)))
        rules = list(s.scalars(select(models.SecurityGroupRule).where(
            models.SecurityGroupRule.group_id.in_([g.group_id for g in groups]))))
        tags = common.tags_of(s, ctx.account_id, [g.group_id for g in groups])
    out = []
    for group in groups:
        mine = [r for r in rules if r.group_id == group.group_id]
        ingress = [r for r in mine if not r.is_egress]
        egress = [r for r in mine if r.is_egress]
        fields = {"group-id": group.group_id, "group-name": group.name,
                  "description": group.description, "vpc-id": group.vpc_id,
                  "owner-id": group.account_id,
                  "ip-permission.protocol": [r.protocol for r in ingress],
                  "ip-permission.from-port": [r.from_port for r in ingress],
                  "ip-permission.to-port": [r.to_port for r in ingress],
                  "ip-permission.cidr": [r.cidr for r in ingress
                                         if r.cidr and not sg.is_ipv6(r.cidr)],
                  "ip-permission.ipv6-cidr": [r.cidr for r in ingress if sg.is_ipv6(r.cidr)],
                  "egress.ip-permission.ipv6-cidr": [r.cidr for r in egress
                                                     if sg.is_ipv6(r.cidr)],
                  "ip-permission.group-id": [r.ref_group_id for r in ingress if r.ref_group_id],
                  "egress.ip-permission.cidr": [r.cidr for r in egress
                                                if r.cidr and not sg.is_ipv6(r.cidr)]}
        if not filters.match(flt, fields, tags[group.group_id]):
            continue
        out.append({
            "GroupId": group.group_id, "GroupName": group.name, "Description": group.description,
            "OwnerId": group.account_id, "VpcId": group.vpc_id,
            "IpPermissions": sg.permissions_view(ingress),
            "IpPermissionsEgress": sg.permissions_view(egress),
            "Tags": tag_list(tags[group.group_id]) or None,
            "SecurityGroupArn": _arn(ctx, group.group_id),
        })
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"))
    return {"SecurityGroups": chunk, "NextToken": token}


@action("ec2", "DeleteSecurityGroup")
def delete_security_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        group = sg.resolve_group(s, ctx.account_id, p.get("GroupId"), p.get("GroupName"))
        if group.name == "default":
            raise exc.CannotDelete("the specified group: \"default\" name: \"default\" cannot be deleted")
        users = [i.instance_id for i in s.scalars(select(models.Instance).where(
            models.Instance.account_id == ctx.account_id, models.Instance.state != "terminated"))
            if group.group_id in i.security_group_ids]
        users += [e.eni_id for e in s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.account_id == ctx.account_id))
            if group.group_id in e.security_group_ids]
        users += [lb.name for lb in s.scalars(select(LoadBalancer).where(
            LoadBalancer.account_id == ctx.account_id)) if group.group_id in lb.security_group_ids]
        if users:
            raise exc.DependencyViolation(f"resource {group.group_id} has a dependent object")
        referrers = s.scalars(select(models.SecurityGroupRule).where(
            models.SecurityGroupRule.ref_group_id == group.group_id,
            models.SecurityGroupRule.group_id != group.group_id)).first()
        if referrers is not None:
            raise exc.InvalidGroupInUse(
                f"Group {group.group_id} is referenced by group {referrers.group_id}")
        for rule in s.scalars(select(models.SecurityGroupRule).where(
                models.SecurityGroupRule.group_id == group.group_id)):
            s.delete(rule)
        s.flush()
        common.delete_with_tags(s, group)
    return {"Return": True, "GroupId": group.group_id}


def _authorize(ctx: RequestContext, p: dict[str, Any], egress: bool) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        group = sg.resolve_group(s, ctx.account_id, p.get("GroupId"), p.get("GroupName"))
        specs = sg.parse_permissions(s, ctx.account_id, p)
        existing = list(s.scalars(select(models.SecurityGroupRule).where(
            models.SecurityGroupRule.group_id == group.group_id,
            models.SecurityGroupRule.is_egress == egress)))
        have = {sg.identity_of(r) for r in existing}
        for spec in specs:
            if spec.identity in have:
                peer = spec.cidr or spec.ref_group_id or spec.prefix_list_id
                raise exc.InvalidPermissionDuplicate(
                    f"the specified rule \"peer: {peer}, {spec.protocol.upper()}, from port: "
                    f"{spec.from_port}, to port: {spec.to_port}, ALLOW\" already exists")
            have.add(spec.identity)
        if sg.rule_count(s, existing, specs) > sg.MAX_RULES:
            raise exc.RulesPerSecurityGroupLimitExceeded(
                f"The maximum number of rules per security group ({sg.MAX_RULES}) has been reached.")
        added = [sg.add_rule(s, ctx.account_id, group.group_id, spec, egress) for spec in specs]
        views = [sg.rule_view(r) for r in added]
    return {"Return": True, "SecurityGroupRules": views}


def _revoke(ctx: RequestContext, p: dict[str, Any], egress: bool) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        group = sg.resolve_group(s, ctx.account_id, p.get("GroupId"), p.get("GroupName"))
        existing = list(s.scalars(select(models.SecurityGroupRule).where(
            models.SecurityGroupRule.group_id == group.group_id,
            models.SecurityGroupRule.is_egress == egress)))
        doomed: list[models.SecurityGroupRule] = []
        for rule_id in p.get("SecurityGroupRuleIds") or []:
            match = next((r for r in existing if r.rule_id == rule_id), None)
            if match is None:
                raise exc.InvalidSecurityGroupRuleIdNotFound(
                    f"The security group rule ID '{rule_id}' does not exist")
            doomed.append(match)
        if not p.get("SecurityGroupRuleIds"):
            for spec in sg.parse_permissions(s, ctx.account_id, p):
                match = next((r for r in existing if sg.identity_of(r) == spec.identity), None)
                if match is None:
                    raise exc.InvalidPermissionNotFound(
                        "The specified rule does not exist in this security group.")
                doomed.append(match)
        for rule in doomed:
            s.delete(rule)
    return {"Return": True}


@action("ec2", "AuthorizeSecurityGroupIngress")
def authorize_ingress(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return _authorize(ctx, p, egress=False)


@action("ec2", "AuthorizeSecurityGroupEgress")
def authorize_egress(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return _authorize(ctx, p, egress=True)


@action("ec2", "RevokeSecurityGroupIngress")
def revoke_ingress(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return _revoke(ctx, p, egress=False)


@action("ec2", "RevokeSecurityGroupEgress")
def revoke_egress(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return _revoke(ctx, p, egress=True)


@action("ec2", "DescribeSecurityGroupRules")
def describe_security_group_rules(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), {"group-id", "security-group-rule-id"})
    wanted = p.get("SecurityGroupRuleIds") or []
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.read() as s:
        rules = list(s.scalars(select(models.SecurityGroupRule).where(
            models.SecurityGroupRule.account_id == ctx.account_id)
            .order_by(models.SecurityGroupRule.group_id, models.SecurityGroupRule.rule_id)))
    known = {r.rule_id for r in rules}
    for rule_id in wanted:
        if rule_id not in known:
            raise exc.InvalidSecurityGroupRuleIdNotFound(
                f"The security group rule ID '{rule_id}' does not exist")
    out = [sg.rule_view(r) for r in rules if (not wanted or r.rule_id in wanted)
           and filters.match(flt, {"group-id": r.group_id, "security-group-rule-id": r.rule_id}, {})]
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"))
    return {"SecurityGroupRules": chunk, "NextToken": token}
