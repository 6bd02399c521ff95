"""Security groups: list, create, delete, and one group's rules edited inline (added and
removed with AuthorizeSecurityGroupIngress/Egress and Revoke..., errors at the field)."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.tags import EC2, Taggable, editor, register
from gureum.console.routing import route
from gureum.errors import ApiError

PROTOCOLS = [("tcp", "TCP"), ("udp", "UDP"), ("icmp", "ICMP"), ("-1", "All traffic")]
GROUP_FIELDS = {"~name": "group_name", "InvalidGroup.Duplicate": "group_name",
                "~description": "description", "InvalidVpcID": "vpc_id", "~vpc": "vpc_id"}
RULE_FIELDS = {"~port": "ports", "~ICMP": "ports", "~IP protocol": "protocol",
               "~CIDR": "source", "InvalidGroup": "source", "~expecting \"sg-": "source",
               "~IpRanges or UserIdGroupPairs": "source", "~description": "rule_description"}
EMPTY_RULE = {"protocol": "tcp", "ports": "", "source": "0.0.0.0/0", "rule_description": ""}


def _groups(page: Page) -> list[dict[str, Any]]:
    return sorted(page.call("DescribeSecurityGroups")["SecurityGroups"],
                  key=lambda g: (g.get("VpcId", ""), g["GroupName"]))


def _list(page: Page, status: int = 200, **context: Any) -> Response:
    context.setdefault("values", {"group_name": "", "description": "", "vpc_id": ""})
    return page.render("security_groups.html", status=status, groups=_groups(page),
                       vpcs=page.call("DescribeVpcs")["Vpcs"], **context)


@route("GET", "/security-groups")
def list_groups(page: Page) -> Response:
    return _list(page)


@route("POST", "/security-groups")
def create(page: Page) -> Response:
    values = {"group_name": page.request.field("group_name"),
              "description": page.request.field("description"),
              "vpc_id": page.request.field("vpc_id")}
    params = {"GroupName": values["group_name"], "Description": values["description"]}
    if values["vpc_id"]:
        params["VpcId"] = values["vpc_id"]
    try:
        out = page.call("CreateSecurityGroup", params)
    except ApiError as err:
        return _list(page, err.status, values=values, errors=error_on(err, GROUP_FIELDS))
    return page.done(f"/security-groups/{out['GroupId']}",
                     f"Created security group {values['group_name']} ({out['GroupId']})")


def _show(page: Page, group_id: str, status: int = 200, **context: Any) -> Response:
    group = page.call("DescribeSecurityGroups", {"GroupIds": [group_id]})["SecurityGroups"][0]
    rules = page.call("DescribeSecurityGroupRules", {"Filters": [
        {"Name": "group-id", "Values": [group_id]}]})["SecurityGroupRules"]
    context.setdefault("values", EMPTY_RULE)
    context.setdefault("direction", "")
    context.setdefault("tagging", editor(page, "security-group", group_id))
    return page.render("security_group.html", status=status, group=group,
                       ingress=[r for r in rules if not r["IsEgress"]],
                       egress=[r for r in rules if r["IsEgress"]], protocols=PROTOCOLS,
                       **context)


@route("GET", "/security-groups/{group_id}")
def show(page: Page, group_id: str) -> Response:
    return _show(page, group_id)


register("security-group", Taggable("security group", "Security groups", EC2,
                                     lambda g: f"/security-groups/{g}", _show))


def permission(values: dict[str, str]) -> dict[str, Any]:
    """One IpPermissions entry as the form describes it: ports "22" or "8000-8100" (ICMP:
    type-code), the source a CIDR or a security group id. Values go to the API as typed:
    its parser and handler judge them, so the errors are AWS's."""
    perm: dict[str, Any] = {"IpProtocol": values["protocol"]}
    ports = values["ports"]
    if values["protocol"] != "-1" and ports:
        low, _, high = ports.partition("-") if not ports.startswith("-") else (ports, "", "")
        perm["FromPort"], perm["ToPort"] = low.strip(), (high or low).strip()
    source, described = values["source"], values["rule_description"]
    if source.startswith("sg-"):
        pair: dict[str, str] = {"GroupId": source}
        if described:
            pair["Description"] = described
        perm["UserIdGroupPairs"] = [pair]
    elif source:
        rng = {"CidrIp": source}
        if described:
            rng["Description"] = described
        perm["IpRanges"] = [rng]
    return perm


@route("POST", "/security-groups/{group_id}/rules")
def add_rule(page: Page, group_id: str) -> Response:
    direction = "egress" if page.request.field("direction") == "egress" else "ingress"
    values = {"protocol": page.request.field("protocol") or "tcp",
              "ports": page.request.field("ports"), "source": page.request.field("source"),
              "rule_description": page.request.field("rule_description")}
    action = ("AuthorizeSecurityGroupEgress" if direction == "egress"
              else "AuthorizeSecurityGroupIngress")
    try:
        page.call(action, {"GroupId": group_id, "IpPermissions": [permission(values)]})
    except ApiError as err:
        return _show(page, group_id, err.status, values=values, direction=direction,
                     errors=error_on(err, RULE_FIELDS))
    return page.done(f"/security-groups/{group_id}",
                     f"Added {direction} rule {values['protocol']} {values['ports']} "
                     f"{values['source']}".replace("  ", " "))


@route("POST", "/security-groups/{group_id}/rules/{rule_id}/delete")
def remove_rule(page: Page, group_id: str, rule_id: str) -> Response:
    action = ("RevokeSecurityGroupEgress" if page.request.field("direction") == "egress"
              else "RevokeSecurityGroupIngress")
    return page.change(action, {"GroupId": group_id, "SecurityGroupRuleIds": [rule_id]},
                       f"/security-groups/{group_id}", f"Removed rule {rule_id}")


@route("POST", "/security-groups/{group_id}/delete")
def delete(page: Page, group_id: str) -> Response:
    if (ask := page.unconfirmed(kind="security group", name=group_id,
                                action=f"/security-groups/{group_id}/delete",
                                back=f"/security-groups/{group_id}")) is not None:
        return ask
    return page.change("DeleteSecurityGroup", {"GroupId": group_id}, "/security-groups",
                       f"Deleted security group {group_id}",
                       failed=f"/security-groups/{group_id}")
