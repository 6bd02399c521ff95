"""CloudWatch in the console: graphs (drawn from GetMetricStatistics) and alarms."""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup

from gureum.console import csrf
from gureum.console.charts import line_chart
from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.routing import route
from gureum.errors import ApiError

# gureum measures every 10 s (GUREUM_METRICS_INTERVAL): graphs show the last quarter
# hour at that resolution, so a busy app shows within seconds.
WINDOW = dt.timedelta(minutes=15)
PERIOD = 10


def series(page: Page, namespace: str, metric: str, dimensions: dict[str, str],
           statistic: str = "Average", period: int = PERIOD,
           window: dt.timedelta = WINDOW) -> tuple[list[tuple[dt.datetime, float]], dt.datetime,
                                                   dt.datetime]:
    """One statistic of a metric over the last `window`, as (time, value) points."""
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - window
    out = page.call("GetMetricStatistics", {
        "Namespace": namespace, "MetricName": metric, "StartTime": start, "EndTime": end,
        "Period": period, "Statistics": [statistic],
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
        service="cloudwatch")
    points = [(p["Timestamp"], float(p[statistic])) for p in out["Datapoints"]]
    return points, start, end


def graph(page: Page, title: str, namespace: str, metric: str, dimensions: dict[str, str],
          unit: str = "", statistic: str = "Average", floor_max: float = 0.0) -> Markup:
    points, start, end = series(page, namespace, metric, dimensions, statistic)
    return line_chart(title, points, unit, start, end, floor_max)


def instance_cpu_chart(page: Page, instance_id: str) -> Markup:
    return graph(page, f"CPU utilization of {instance_id}", "AWS/EC2", "CPUUtilization",
                 {"InstanceId": instance_id}, unit=" %", floor_max=10.0)


@route("GET", "/instances/{instance_id}/cpu")
def instance_cpu(page: Page, instance_id: str) -> Response:
    """The instance's CPU graph alone, refreshed live on its page."""
    return Response(200, instance_cpu_chart(page, instance_id).encode())


def _alarms(page: Page) -> list[dict[str, Any]]:
    return page.call("DescribeAlarms", service="cloudwatch")["MetricAlarms"]


OPERATORS = [("GreaterThanThreshold", ">"), ("GreaterThanOrEqualToThreshold", ">="),
             ("LessThanThreshold", "<"), ("LessThanOrEqualToThreshold", "<=")]
ALARM_FIELDS = {"~AlarmName": "alarm_name", "~name": "alarm_name", "~Threshold": "threshold",
                "~Period": "period", "~EvaluationPeriods": "periods",
                "~ComparisonOperator": "operator", "LimitExceeded": "alarm_name"}
NEW_ALARM = {"alarm_name": "", "instance_id": "", "operator": "GreaterThanThreshold",
             "threshold": "80", "period": "60", "periods": "3"}


def _alarms_page(page: Page, status: int = 200, **context: Any) -> Response:
    from gureum.console.pages.instances import instances

    context.setdefault("values", NEW_ALARM)
    live = [i for i in instances(page) if i["State"]["Name"] != "terminated"]
    return page.render("alarms.html", status=status, alarms=_alarms(page), instances=live,
                       operators=OPERATORS, **context)


@route("GET", "/alarms")
def alarms(page: Page) -> Response:
    return _alarms_page(page)


@route("POST", "/alarms")
def create_alarm(page: Page) -> Response:
    """A CPU alarm on one instance (AWS/EC2 CPUUtilization, Average)."""
    values = {k: page.request.field(k) for k in NEW_ALARM}
    try:
        page.call("PutMetricAlarm", {
            "AlarmName": values["alarm_name"], "Namespace": "AWS/EC2",
            "MetricName": "CPUUtilization", "Statistic": "Average",
            "Dimensions": [{"Name": "InstanceId", "Value": values["instance_id"]}],
            "ComparisonOperator": values["operator"], "Threshold": values["threshold"],
            "Period": values["period"], "EvaluationPeriods": values["periods"]},
            service="cloudwatch")
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
