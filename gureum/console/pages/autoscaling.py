"""Auto Scaling groups: list, one group's members and scaling activities (live), and its
desired capacity set from the page."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.tags import AUTO_SCALING, Taggable, editor, register
from gureum.console.routing import route
from gureum.errors import ApiError
from gureum.services.autoscaling.exceptions import ValidationError

FIELDS = {"~capacity": "desired", "~DesiredCapacity": "desired", "ValidationError": "desired"}


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


@route("GET", "/auto-scaling")
def list_groups(page: Page) -> Response:
    groups = page.call("DescribeAutoScalingGroups", service="autoscaling")["AutoScalingGroups"]
    return page.render("auto_scaling.html", groups=groups)


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
