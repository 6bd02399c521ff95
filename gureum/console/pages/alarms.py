"""CloudWatch alarms: list (live), create on what the console graphs (an instance's CPU,
a load balancer's requests, latency or target 5XX answers) with an optional action (an
Auto Scaling group's scaling policy), delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gureum.console import csrf
from gureum.console.formats import tag
from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.instances import instances
from gureum.console.pages.load_balancers import metric_name
from gureum.console.routing import route
from gureum.errors import ApiError


@dataclass(frozen=True)
class Watched:
    """A metric an alarm may watch, per resource (its one dimension)."""

    label: str
    namespace: str
    metric: str
    statistic: str
    dimension: str
    unit: str


# The form's "metric" field is "<kind>:<resource>" (an instance id, or the load
# balancer's metric dimension app/NAME/ID).
WATCHED = {
    "cpu": Watched("CPU utilization", "AWS/EC2", "CPUUtilization", "Average", "InstanceId", "%"),
    "requests": Watched("Requests", "AWS/ApplicationELB", "RequestCount", "Sum",
                        "LoadBalancer", "requests"),
    "latency": Watched("Target response time", "AWS/ApplicationELB", "TargetResponseTime",
                       "Average", "LoadBalancer", "s"),
    "target-5xx": Watched("Target 5XX answers", "AWS/ApplicationELB",
                          "HTTPCode_Target_5XX_Count", "Sum", "LoadBalancer", "answers"),
}
LOAD_BALANCER_METRICS = ["requests", "latency", "target-5xx"]
OPERATORS = [("GreaterThanThreshold", ">"), ("GreaterThanOrEqualToThreshold", ">="),
             ("LessThanThreshold", "<"), ("LessThanOrEqualToThreshold", "<=")]
# EvaluationPeriods before Period: "period" is in both.
ALARM_FIELDS = {"~AlarmName": "alarm_name", "~name": "alarm_name", "~Threshold": "threshold",
                "~EvaluationPeriods": "periods", "~Period": "period",
                "~ComparisonOperator": "operator", "LimitExceeded": "alarm_name",
                "~Dimension": "metric", "~action": "action"}
NEW_ALARM = {"alarm_name": "", "metric": "", "operator": "GreaterThanThreshold",
             "threshold": "80", "period": "60", "periods": "3", "action": ""}


def _alarms(page: Page) -> list[dict[str, Any]]:
    return page.call("DescribeAlarms", service="cloudwatch")["MetricAlarms"]


def _watchable(page: Page) -> list[tuple[str, list[tuple[str, str]]]]:
    """What the metric field offers, grouped (optgroups): instances' CPU, then each
    application load balancer's metrics."""
    cpu = [(f"cpu:{i['InstanceId']}", " · ".join(x for x in (
        i["InstanceId"], tag(i.get("Tags"), "Name"), "CPU utilization") if x))
           for i in instances(page) if i["State"]["Name"] != "terminated"]
    groups = [("Instances", cpu)] if cpu else []
    for lb in page.call("DescribeLoadBalancers", service="elbv2")["LoadBalancers"]:
        if lb["Type"] == "application":
            groups.append((f"Load balancer {lb['LoadBalancerName']}", [
                (f"{kind}:{metric_name(lb)}", f"{lb['LoadBalancerName']} · {WATCHED[kind].label}")
                for kind in LOAD_BALANCER_METRICS]))
    return groups


def _policies(page: Page) -> list[tuple[str, str]]:
    """Scaling policies an alarm may run: simple and step ones (target tracking policies
    keep alarms of their own)."""
    found = page.call("DescribePolicies", {"PolicyTypes": ["SimpleScaling", "StepScaling"]},
                      service="autoscaling")["ScalingPolicies"]
    return [(p["PolicyARN"], f"{p['AutoScalingGroupName']}: {p['PolicyName']}") for p in found]


def _alarms_page(page: Page, status: int = 200, **context: Any) -> Response:
    context.setdefault("values", NEW_ALARM)
    return page.render("alarms.html", status=status, alarms=_alarms(page),
                       watchable=_watchable(page), policies=_policies(page),
                       operators=OPERATORS, **context)


@route("GET", "/alarms")
def alarms(page: Page) -> Response:
    return _alarms_page(page)


def alarm_params(values: dict[str, str]) -> dict[str, Any] | None:
    """PutMetricAlarm's parameters; None when the metric field names nothing offered."""
    kind, _, resource = values["metric"].partition(":")
    watched = WATCHED.get(kind)
    if watched is None or not resource:
        return None
    params: dict[str, Any] = {
        "AlarmName": values["alarm_name"], "Namespace": watched.namespace,
        "MetricName": watched.metric, "Statistic": watched.statistic,
        "Dimensions": [{"Name": watched.dimension, "Value": resource}],
        "ComparisonOperator": values["operator"], "Threshold": values["threshold"],
        "Period": values["period"], "EvaluationPeriods": values["periods"]}
    if values["action"]:
        params["AlarmActions"] = [values["action"]]
    return params


@route("POST", "/alarms")
def create_alarm(page: Page) -> Response:
    values = {k: page.request.field(k) for k in NEW_ALARM}
    params = alarm_params(values)
    if params is None:
        return _alarms_page(page, 400, values=values, errors={
            "metric": "Choose an instance's CPU or a load balancer's metric to watch."})
    try:
        page.call("PutMetricAlarm", params, service="cloudwatch")
    except ApiError as err:
        return _alarms_page(page, err.status, values=values,
                            errors=error_on(err, ALARM_FIELDS))
    return page.done("/alarms", f"Alarm {values['alarm_name']} saved")


@route("POST", "/alarms/delete")
def delete_alarm(page: Page) -> Response:
    name = page.request.field("alarm_name")
    if (ask := page.unconfirmed(kind="alarm", name=name, action="/alarms/delete",
                                extra={"alarm_name": name}, back="/alarms")) is not None:
        return ask
    page.call("DeleteAlarms", {"AlarmNames": [name]}, service="cloudwatch")
    return page.done("/alarms", f"Deleted alarm {name}")


@route("GET", "/alarms/rows")
def alarm_rows(page: Page) -> Response:
    return page.fragment("_alarm_rows.html", alarms=_alarms(page), csrf_field=csrf.FIELD,
                         csrf_token=page.session.csrf_token)
