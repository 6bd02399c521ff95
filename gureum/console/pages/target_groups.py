"""Target groups: list and create (with health check settings), one group's targets with
live health, instances registered and deregistered, delete."""

from __future__ import annotations

from typing import Any

from gureum.console import csrf
from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.instances import instances
from gureum.console.routing import route
from gureum.errors import ApiError

PROTOCOLS = ["HTTP", "HTTPS", "TCP"]
# Form field -> CreateTargetGroup member, sent only when filled in (else AWS's default).
HEALTH_CHECK = {"hc_protocol": "HealthCheckProtocol", "hc_port": "HealthCheckPort",
                "hc_path": "HealthCheckPath", "hc_interval": "HealthCheckIntervalSeconds",
                "hc_timeout": "HealthCheckTimeoutSeconds", "hc_healthy": "HealthyThresholdCount",
                "hc_unhealthy": "UnhealthyThresholdCount"}
NEW_GROUP = {"name": "", "protocol": "HTTP", "port": "80", "vpc_id": "", "hc_protocol": "",
             "hc_port": "", "hc_path": "/", "hc_interval": "", "hc_timeout": "",
             "hc_healthy": "", "hc_unhealthy": "", "hc_matcher": ""}
# Health check words first: "HealthCheckPort" holds "port", "UnhealthyThresholdCount"
# holds "HealthyThresholdCount".
GROUP_FIELDS = {"~Health check protocol": "hc_protocol", "~HealthCheckProtocol": "hc_protocol",
                "~Health check port": "hc_port", "~HealthCheckPort": "hc_port",
                "~Health check path": "hc_path", "~HealthCheckPath": "hc_path",
                "~Health check timeout": "hc_timeout", "~HealthCheckTimeout": "hc_timeout",
                "~HealthCheckInterval": "hc_interval", "~UnhealthyThreshold": "hc_unhealthy",
                "~HealthyThreshold": "hc_healthy", "~Matcher": "hc_matcher",
                "DuplicateTargetGroupName": "name", "~name": "name", "~VPC": "vpc_id",
                "~Protocol": "protocol", "~port": "port"}
TARGET_FIELDS = {"~port": "target_port", "InvalidTarget": "instance_id",
                 "TooManyTargets": "instance_id", "~instance": "instance_id"}


def target_group(page: Page, name: str) -> dict[str, Any]:
    return page.call("DescribeTargetGroups", {"Names": [name]}, service="elbv2")[
        "TargetGroups"][0]


def with_health(page: Page, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups, each with its targets' health (DescribeTargetHealth) as "Health"."""
    for group in groups:
        group["Health"] = page.call("DescribeTargetHealth", {
            "TargetGroupArn": group["TargetGroupArn"]}, service="elbv2")[
            "TargetHealthDescriptions"]
    return groups


def _list(page: Page, status: int = 200, **context: Any) -> Response:
    context.setdefault("values", NEW_GROUP)
    groups = page.call("DescribeTargetGroups", service="elbv2")["TargetGroups"]
    return page.render("target_groups.html", status=status, groups=groups,
                       vpcs=page.call("DescribeVpcs")["Vpcs"], protocols=PROTOCOLS, **context)


@route("GET", "/target-groups")
def list_groups(page: Page) -> Response:
    return _list(page)


def group_params(values: dict[str, str]) -> dict[str, Any]:
    """CreateTargetGroup's parameters as the form gives them (numbers as typed: the API's
    parser judges them)."""
    params: dict[str, Any] = {"Name": values["name"], "Protocol": values["protocol"],
                              "Port": values["port"], "VpcId": values["vpc_id"],
                              "TargetType": "instance"}
    params.update({member: values[key] for key, member in HEALTH_CHECK.items() if values[key]})
    if values["hc_matcher"]:
        params["Matcher"] = {"HttpCode": values["hc_matcher"]}
    return params


@route("POST", "/target-groups")
def create(page: Page) -> Response:
    values = {k: page.request.field(k) for k in NEW_GROUP}
    try:
        out = page.call("CreateTargetGroup", group_params(values), service="elbv2")
    except ApiError as err:
        return _list(page, err.status, values=values, errors=error_on(err, GROUP_FIELDS))
    name = out["TargetGroups"][0]["TargetGroupName"]
    return page.done(f"/target-groups/{name}", f"Created target group {name}")


def _show(page: Page, name: str, status: int = 200, **context: Any) -> Response:
    group = target_group(page, name)
    context.setdefault("target", {"instance_id": "", "target_port": ""})
    live = [i for i in instances(page) if i["State"]["Name"] in ("pending", "running",
                                                                  "stopped")]
    return page.render("target_group.html", status=status, group=group,
                       groups=with_health(page, [group]), instances=live, deregister=True,
                       **context)


@route("GET", "/target-groups/{name}")
def show(page: Page, name: str) -> Response:
    return _show(page, name)


@route("GET", "/target-groups/{name}/health")
def health(page: Page, name: str) -> Response:
    """The group's targets alone, refreshed live (with their deregister buttons)."""
    return page.fragment("_target_health.html", groups=with_health(
        page, [target_group(page, name)]), deregister=True, csrf_field=csrf.FIELD,
        csrf_token=page.session.csrf_token)


def _target(instance_id: str, port: str) -> dict[str, Any]:
    target: dict[str, Any] = {"Id": instance_id}
    if port:
        target["Port"] = port
    return target


@route("POST", "/target-groups/{name}/targets")
def register_target(page: Page, name: str) -> Response:
    target = {"instance_id": page.request.field("instance_id"),
              "target_port": page.request.field("target_port")}
    arn = target_group(page, name)["TargetGroupArn"]
    try:
        page.call("RegisterTargets", {"TargetGroupArn": arn, "Targets": [
            _target(target["instance_id"], target["target_port"])]}, service="elbv2")
    except ApiError as err:
        return _show(page, name, err.status, target=target, errors=error_on(err, TARGET_FIELDS))
    return page.done(f"/target-groups/{name}",
                     f"Registered {target['instance_id']} with {name}")


@route("POST", "/target-groups/{name}/targets/delete")
def deregister_target(page: Page, name: str) -> Response:
    instance_id, port = page.request.field("instance_id"), page.request.field("target_port")
    arn = target_group(page, name)["TargetGroupArn"]
    return page.change("DeregisterTargets", {"TargetGroupArn": arn, "Targets": [
        _target(instance_id, port)]}, f"/target-groups/{name}",
        f"Deregistering {instance_id} from {name} (draining first)", service="elbv2")


@route("POST", "/target-groups/{name}/delete")
def delete(page: Page, name: str) -> Response:
    if (ask := page.unconfirmed(kind="target group", name=name,
                                action=f"/target-groups/{name}/delete",
                                back=f"/target-groups/{name}")) is not None:
        return ask
    return page.change("DeleteTargetGroup", {"TargetGroupArn": target_group(page, name)[
        "TargetGroupArn"]}, "/target-groups", f"Deleted target group {name}",
        failed=f"/target-groups/{name}", service="elbv2")
