"""CloudWatch graphs in the console, drawn from GetMetricStatistics (alarms: alarms.py)."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup

from gureum.console.charts import line_chart
from gureum.console.http import Response
from gureum.console.page import Page
from gureum.console.routing import route

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
