"""Security group rules in place: UpdateSecurityGroupRuleDescriptionsIngress/Egress,
ModifySecurityGroupRules, and DescribeSecurityGroupReferences (none: no rule names a
peer VPC's group)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import security_groups as sg
from gureum.store import models


def _rules(s: Session, group_id: str, egress: bool | None = None) -> list[models.SecurityGroupRule]:
    query = select(models.SecurityGroupRule).where(models.SecurityGroupRule.group_id == group_id)
    if egress is not None:
        query = query.where(models.SecurityGroupRule.is_egress == egress)
    return list(s.scalars(query))


def _update_descriptions(ctx: RequestContext, p: dict[str, Any], egress: bool) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        group = sg.resolve_group(s, ctx.account_id, p.get("GroupId"), p.get("GroupName"))
        rules = _rules(s, group.group_id, egress)
        by_id = {r.rule_id: r for r in rules}
        for item in p.get("SecurityGroupRuleDescriptions") or []:
            rule = by_id.get(item.get("SecurityGroupRuleId") or "")
            if rule is None:
                raise exc.InvalidSecurityGroupRuleIdNotFound(
                    f"The security group rule ID '{item.get('SecurityGroupRuleId')}' does not "
                    "exist")
            rule.description = item.get("Description") or ""
        if p.get("IpPermissions"):
            for spec in sg.parse_permissions(s, ctx.account_id, p):
                rule = next((r for r in rules if sg.identity_of(r) == spec.identity), None)
                if rule is None:
                    raise exc.InvalidPermissionNotFound(
                        "The specified rule does not exist in this security group.")
                rule.description = spec.description
    return {"Return": True}


@action("ec2", "UpdateSecurityGroupRuleDescriptionsIngress")
def update_descriptions_ingress(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return _update_descriptions(ctx, p, egress=False)


@action("ec2", "UpdateSecurityGroupRuleDescriptionsEgress")
def update_descriptions_egress(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return _update_descriptions(ctx, p, egress=True)


def _as_permission(request: dict[str, Any]) -> dict[str, Any]:
    """A SecurityGroupRuleRequest in IpPermissions' shape, to validate it the same way."""
    perm: dict[str, Any] = {"IpProtocol": request.get("IpProtocol", "-1"),
                            "FromPort": request.get("FromPort"), "ToPort": request.get("ToPort")}
    if request.get("CidrIpv6"):
        perm["Ipv6Ranges"] = [{"CidrIpv6": request.get("CidrIpv6")}]
    if request.get("PrefixListId"):
        perm["PrefixListIds"] = [{"PrefixListId": request["PrefixListId"],
                                  "Description": request.get("Description", "")}]
    if request.get("CidrIpv4"):
        perm["IpRanges"] = [{"CidrIp": request["CidrIpv4"],
                             "Description": request.get("Description", "")}]
    if request.get("ReferencedGroupId"):
        perm["UserIdGroupPairs"] = [{"GroupId": request["ReferencedGroupId"],
                                     "Description": request.get("Description", "")}]
    return perm


@action("ec2", "ModifySecurityGroupRules")
def modify_security_group_rules(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        group = sg.resolve_group(s, ctx.account_id, p.get("GroupId"), None)
        rules = _rules(s, group.group_id)
        by_id = {r.rule_id: r for r in rules}
        for item in p["SecurityGroupRules"]:
            rule = by_id.get(item["SecurityGroupRuleId"])
            if rule is None:
                raise exc.InvalidSecurityGroupRuleIdNotFound(
                    f"The security group rule ID '{item['SecurityGroupRuleId']}' does not exist")
            request = item.get("SecurityGroupRule") or {}
            (spec,) = sg.parse_permissions(s, ctx.account_id,
                                           {"IpPermissions": [_as_permission(request)]})
            if any(sg.identity_of(r) == spec.identity and r.is_egress == rule.is_egress
                   and r.rule_id != rule.rule_id for r in rules):
                raise exc.InvalidPermissionDuplicate("the specified rule already exists")
            rule.protocol, rule.from_port, rule.to_port = spec.protocol, spec.from_port, spec.to_port
            rule.cidr, rule.ref_group_id = spec.cidr, spec.ref_group_id
            rule.prefix_list_id = spec.prefix_list_id
            rule.description = spec.description
    return {"Return": True}


@action("ec2", "DescribeSecurityGroupReferences")
def describe_security_group_references(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    """Groups of peered VPCs that reference these: rules cannot name a peer's groups
    here, so none; the groups themselves must exist."""
    with ctx.cloud.store.read() as s:
        for group_id in p["GroupId"]:
            sg.resolve_group(s, ctx.account_id, group_id, None)
    return {"SecurityGroupReferenceSet": []}
