"""Auto Scaling groups: list and create (from a launch template), one group's members and
scaling activities (live), its desired capacity set from the page, delete."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.tags import AUTO_SCALING, Taggable, editor, register
from gureum.console.routing import route
from gureum.errors import ApiError
from gureum.services.autoscaling.exceptions import ValidationError

FIELDS = {"~capacity": "desired", "~DesiredCapacity": "desired", "ValidationError": "desired"}
# Auto Scaling answers most mistakes with ValidationError: its message says which part.
# Desired first ("...between the specified min size and max size"), MinSize before
# MaxSize ("MinSize and MaxSize must not be negative").
CREATE_FIELDS = {"AlreadyExists": "name", "LimitExceeded": "name",
                 "~AutoScalingGroupName": "name", "~launch template": "launch_template",
                 "~LaunchTemplate": "launch_template", "~Desired capacity": "desired",
                 "~DesiredCapacity": "desired", "~Max bound": "max", "~MinSize": "min",
                 "~MaxSize": "max", "~target group": "target_groups",
                 "~TargetGroup": "target_groups", "~subnet": "subnets",
                 "~Availability Zone": "subnets", "~health check type": "health_check_type",
                 "~HealthCheckGracePeriod": "grace"}
NEW_GROUP = {"name": "", "launch_template": "", "version": "$Latest", "min": "1", "max": "2",
             "desired": "", "subnets": [], "target_groups": [], "health_check_type": "EC2",
             "grace": ""}
VERSIONS = [("$Latest", "Latest version"), ("$Default", "Default version")]
HEALTH_CHECK_TYPES = [("EC2", "EC2 (the instance runs)"),
                      ("ELB", "ELB (and its target groups find it healthy)")]


def _group(page: Page, name: str) -> dict[str, Any]:
    found = page.call("DescribeAutoScalingGroups", {"AutoScalingGroupNames": [name]},
                      service="autoscaling")["AutoScalingGroups"]
    if not found:
        # What the API itself answers for an unknown name in other Auto Scaling calls.
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return found[0]


def _activities(page: Page, name: str) -> list[dict[str, Any]]:
    return page.call("DescribeScalingActivities", {"AutoScalingGroupName": name,
                                                   "MaxRecords": 50},
                     service="autoscaling")["Activities"]


def _list(page: Page, status: int = 200, **context: Any) -> Response:
    """The groups, and the form that creates one."""
    context.setdefault("values", {**NEW_GROUP,
                                  "launch_template": page.request.arg("launch_template")})
    groups = page.call("DescribeAutoScalingGroups", service="autoscaling")["AutoScalingGroups"]
    templates = page.call("DescribeLaunchTemplates")["LaunchTemplates"]
    target_groups = [(g["TargetGroupArn"], f"{g['TargetGroupName']} ({g['Protocol']}:"
                      f"{g['Port']}, {g['VpcId']})")
                     for g in page.call("DescribeTargetGroups", service="elbv2")["TargetGroups"]]
    return page.render("auto_scaling.html", status=status, groups=groups,
                       templates=[(t["LaunchTemplateName"], f"{t['LaunchTemplateName']} "
                                   f"({t['LaunchTemplateId']}, latest v{t['LatestVersionNumber']})")
                                  for t in templates],
                       versions=VERSIONS, health_check_types=HEALTH_CHECK_TYPES,
                       subnets=page.call("DescribeSubnets")["Subnets"],
                       target_groups=target_groups, **context)


@route("GET", "/auto-scaling")
def list_groups(page: Page) -> Response:
    return _list(page)


def group_params(values: dict[str, Any]) -> dict[str, Any]:
    """CreateAutoScalingGroup's parameters as the form gives them (numbers as typed)."""
    params: dict[str, Any] = {
        "AutoScalingGroupName": values["name"],
        "LaunchTemplate": {"LaunchTemplateName": values["launch_template"],
                           "Version": values["version"]},
        "MinSize": values["min"], "MaxSize": values["max"],
        "VPCZoneIdentifier": ",".join(values["subnets"]),
        "HealthCheckType": values["health_check_type"]}
    if values["desired"]:
        params["DesiredCapacity"] = values["desired"]
    if values["target_groups"]:
        params["TargetGroupARNs"] = values["target_groups"]
    if values["grace"]:
        params["HealthCheckGracePeriod"] = values["grace"]
    return params


@route("POST", "/auto-scaling")
def create(page: Page) -> Response:
    f = page.request
    values = {k: f.fields(k) if isinstance(v, list) else f.field(k) for k, v in NEW_GROUP.items()}
    try:
        page.call("CreateAutoScalingGroup", group_params(values), service="autoscaling")
    except ApiError as err:
        return _list(page, err.status, values=values, errors=error_on(err, CREATE_FIELDS))
    return page.done(f"/auto-scaling/{values['name']}",
                     f"Created Auto Scaling group {values['name']}")


@route("POST", "/auto-scaling/{name}/delete")
def delete(page: Page, name: str) -> Response:
    if (ask := page.unconfirmed(kind="Auto Scaling group", name=name,
                                action=f"/auto-scaling/{name}/delete",
                                back=f"/auto-scaling/{name}",
                                note="Its instances are terminated with it.")) is not None:
        return ask
    return page.change("DeleteAutoScalingGroup", {"AutoScalingGroupName": name,
                                                  "ForceDelete": True}, "/auto-scaling",
                       f"Deleting Auto Scaling group {name} and its instances",
                       failed=f"/auto-scaling/{name}", service="autoscaling")


@route("GET", "/auto-scaling/{name}")
def show(page: Page, name: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("desired", "")
    context.setdefault("tagging", editor(page, "auto-scaling-group", name))
    return page.render("auto_scaling_group.html", status=status, group=_group(page, name),
                       activities=_activities(page, name), **context)


register("auto-scaling-group", Taggable("Auto Scaling group", "Auto Scaling groups",
                                        AUTO_SCALING, lambda n: f"/auto-scaling/{n}", show))


@route("GET", "/auto-scaling/{name}/live")
def live(page: Page, name: str) -> Response:
    """Members and activities alone, refreshed live."""
    return page.fragment("_auto_scaling_live.html", group=_group(page, name),
                         activities=_activities(page, name))


@route("POST", "/auto-scaling/{name}/capacity")
def set_capacity(page: Page, name: str) -> Response:
    desired = page.request.field("desired")
    try:
        page.call("SetDesiredCapacity", {"AutoScalingGroupName": name,
                                         "DesiredCapacity": desired}, service="autoscaling")
    except ApiError as err:
        return show(page, name, status=err.status, desired=desired,
                    errors=error_on(err, FIELDS))
    return page.done(f"/auto-scaling/{name}", f"Desired capacity of {name} set to {desired}")
