"""Custom metrics: PutMetricData, ListMetrics, GetMetricStatistics. (The host's own
AWS/EC2 and AWS/ApplicationELB metrics, GetMetricData and alarms come next.)"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from sqlalchemy import select

from gureum.api import paging
from gureum.api.dispatch import RequestContext, action
from gureum.services.cloudwatch import exceptions as exc
from gureum.services.cloudwatch import expressions, series, statistics
from gureum.store.cloudwatch_models import MetricPoint, MetricSeries
from gureum.store.models import utcnow

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MAX_DATAPOINTS = 1440
PAGE = 500


def _dimensions(items: list[dict[str, Any]] | None) -> str:
    items = items or []
    if len(items) > 30:
        raise exc.InvalidParameterValue("A metric has at most 30 dimensions")
    names = [d["Name"] for d in items]
    if len(set(names)) != len(names):
        raise exc.InvalidParameterValue("Dimension names must be unique")
    for d in items:
        check_length("Dimension name", d["Name"], 255)
        check_length("Dimension value", d["Value"], 1024)
    canonical = statistics.canonical_dimensions(items)
    # The stored form has a width (a database enforces it): refused, never cut short.
    check_length("Dimensions (all names and values together)", canonical,
                 statistics.DIMENSIONS_WIDTH)
    return canonical


def check_length(what: str, value: str, limit: int) -> None:
    """AWS's length limits, checked before anything is stored (a database column of that
    width refuses more, and SQLite would silently keep it)."""
    if not 1 <= len(value) <= limit:
        raise exc.InvalidParameterValue(f"{what} must be 1 to {limit} characters")




def _statistic_set(datum: dict[str, Any]) -> tuple[float, float, float, float]:
    """(sample count, sum, minimum, maximum) of one datum, however it was given."""
    given = [k for k in ("Value", "StatisticValues", "Values") if k in datum]
    if len(given) != 1:
        raise exc.InvalidParameterCombination(
            "A datum has exactly one of Value, StatisticValues or Values")
    if "Value" in datum:
        v = float(datum["Value"])
        values = [(v, 1.0)]
    elif "Values" in datum:
        counts = datum.get("Counts") or [1.0] * len(datum["Values"])
        if len(counts) != len(datum["Values"]):
            raise exc.InvalidParameterValue("Values and Counts must have the same length")
        values = [(float(v), float(c)) for v, c in zip(datum["Values"], counts, strict=True)]
    else:
        s = datum["StatisticValues"]
        numbers = [s["SampleCount"], s["Sum"], s["Minimum"], s["Maximum"]]
        if any(not math.isfinite(n) for n in numbers) or s["SampleCount"] <= 0:
            raise exc.InvalidParameterValue("StatisticValues must be finite, SampleCount > 0")
        return float(s["SampleCount"]), float(s["Sum"]), float(s["Minimum"]), float(s["Maximum"])
    if not values or any(not math.isfinite(v) or c <= 0 for v, c in values):
        raise exc.InvalidParameterValue("Values must be finite numbers with positive counts")
    return (sum(c for _, c in values), sum(v * c for v, c in values),
            min(v for v, _ in values), max(v for v, _ in values))


@action("monitoring", "PutMetricData")
def put_metric_data(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    namespace = p["Namespace"]
    check_length("Namespace", namespace, 255)
    if namespace.startswith("AWS/"):
        raise exc.InvalidParameterValue("The value AWS/ for parameter Namespace is invalid: "
                                        "AWS/ namespaces are reserved for the cloud's metrics")
    data = p.get("MetricData") or []
    if not 1 <= len(data) <= 1000:
        raise exc.InvalidParameterValue("MetricData holds 1 to 1000 data points")
    now = utcnow()
    rows = []
    for datum in data:
        when = datum.get("Timestamp") or now
        if when > now + dt.timedelta(hours=2) or when < now - dt.timedelta(days=14):
            raise exc.InvalidParameterValue("A timestamp must lie within the last two weeks "
                                            "and the next two hours")
        count, total, low, high = _statistic_set(datum)
        check_length("MetricName", datum["MetricName"], 255)
        key = (ctx.account_id, namespace, datum["MetricName"],
               _dimensions(datum.get("Dimensions")), datum.get("Unit", "None"))
        rows.append((key, when, count, total, low, high))
    with ctx.cloud.store.write() as s:
        series.write(s, rows)
    return {}


@action("monitoring", "ListMetrics")
def list_metrics(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    query = select(MetricSeries.namespace, MetricSeries.name, MetricSeries.dimensions).where(
        MetricSeries.account_id == ctx.account_id).distinct()
    if p.get("Namespace"):
        query = query.where(MetricSeries.namespace == p["Namespace"])
    if p.get("MetricName"):
        query = query.where(MetricSeries.name == p["MetricName"])
    if p.get("RecentlyActive") == "PT3H":
        query = query.where(MetricSeries.series_id.in_(select(MetricPoint.series_id).where(
            MetricPoint.timestamp >= utcnow() - dt.timedelta(hours=3))))
    with ctx.cloud.store.read() as s:
        series = sorted(s.execute(query).all())
    wanted = p.get("Dimensions") or []
    out = []
    for namespace, name, dims in series:
        have = dict(json.loads(dims))
        if all(f["Name"] in have and (f.get("Value") is None or have[f["Name"]] == f["Value"])
               for f in wanted):
            out.append({"Namespace": namespace, "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(have.items())]})
    start = _offset(p.get("NextToken"))
    chunk = out[start:start + PAGE]
    return {"Metrics": chunk,
            "NextToken": paging.encode(start + PAGE) if start + PAGE < len(out) else None}


def _buckets(ctx: RequestContext, namespace: str, name: str,
             dimensions: list[dict[str, Any]] | None, start: dt.datetime, end: dt.datetime,
             period: int, unit: str | None) -> statistics.Buckets:
    with ctx.cloud.store.read() as s:
        return statistics.buckets(s, ctx.account_id, namespace, name, _dimensions(dimensions),
                                  start, end, period, unit)


def _check_period(period: int) -> None:
    if period < 1 or (period >= 60 and period % 60) or (period < 60 and period not in (
            1, 5, 10, 30)):
        raise exc.InvalidParameterValue("Period must be 1, 5, 10, 30 or a multiple of 60")


@action("monitoring", "GetMetricStatistics")
def get_metric_statistics(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    wanted = p.get("Statistics") or []
    if p.get("ExtendedStatistics"):
        raise exc.InvalidParameterValue("Extended (percentile) statistics are not offered yet")
    if not wanted:
        raise exc.MissingParameter("The parameter Statistics is required")
    period = p["Period"]
    _check_period(period)
    start, end = p["StartTime"], p["EndTime"]
    if start >= end:
        raise exc.InvalidParameterValue("StartTime must be before EndTime")
    if (end - start).total_seconds() / period > MAX_DATAPOINTS:
        raise exc.InvalidParameterCombination(
            f"A request may return at most {MAX_DATAPOINTS} datapoints")
    buckets = _buckets(ctx, p["Namespace"], p["MetricName"], p.get("Dimensions"), start, end,
                       period, p.get("Unit"))
    datapoints = [{"Timestamp": when, "Unit": unit, **{k: values[k] for k in wanted}}
                  for when, (values, unit) in sorted(buckets.items())]
    return {"Label": p["MetricName"], "Datapoints": datapoints}


@action("monitoring", "GetMetricData")
def get_metric_data(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    """MetricStat queries and math expressions over them (`expressions.py`), newest first
    by default; MaxDatapoints pages the data points over NextToken."""
    queries = p["MetricDataQueries"]
    if not 1 <= len(queries) <= 500:
        raise exc.InvalidParameterValue("MetricDataQueries holds 1 to 500 queries")
    ids = [q["Id"] for q in queries]
    if len(set(ids)) != len(ids):
        raise exc.InvalidParameterValue("Query ids must be unique")
    start, end = p["StartTime"], p["EndTime"]
    if start >= end:
        raise exc.InvalidParameterValue("StartTime must be before EndTime")
    series: dict[str, expressions.Series] = {}
    labels: dict[str, str] = {}
    for query in queries:
        if ("Expression" in query) == ("MetricStat" in query):
            raise exc.InvalidParameterValue(
                f"Query {query['Id']}: exactly one of MetricStat and Expression is needed")
        if "MetricStat" not in query:
            continue
        stat = query["MetricStat"]
        if stat["Stat"] not in STATISTICS:
            raise exc.InvalidParameterValue(f"Statistic {stat['Stat'][:32]} is not offered")
        _check_period(stat["Period"])
        metric = stat["Metric"]
        buckets = _buckets(ctx, metric["Namespace"], metric["MetricName"],
                           metric.get("Dimensions"), start, end, stat["Period"],
                           stat.get("Unit"))
        series[query["Id"]] = {when: values[stat["Stat"]] for when, (values, _) in buckets.items()}
        labels[query["Id"]] = query.get("Label", metric["MetricName"])
    pending = [q for q in queries if "Expression" in q]
    while pending:  # expressions may use each other: evaluate those whose inputs are ready
        ready = [q for q in pending if _inputs(q["Expression"]) <= set(series)]
        if not ready:
            raise exc.InvalidParameterValue(
                "An expression refers to an unknown id or expressions refer to each other in "
                f"a circle: {pending[0]['Expression'][:128]}")
        for query in ready:
            inputs = {k: v for k, v in series.items() if k != query["Id"]}
            series[query["Id"]] = expressions.evaluate(query["Expression"], inputs, labels)
            labels[query["Id"]] = query.get("Label", query["Id"])
            pending.remove(query)
    newest_first = p.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    flat = [(query["Id"], when, value) for query in queries if query.get("ReturnData", True)
            for when, value in sorted(series[query["Id"]].items(), reverse=newest_first)]
    offset = _offset(p.get("NextToken"))
    limit = p.get("MaxDatapoints", 100800)
    if limit < 1:
        raise exc.InvalidParameterValue("MaxDatapoints must be at least 1")
    chunk = flat[offset:offset + limit]
    more = offset + limit < len(flat)
    results = []
    for query in queries:
        if not query.get("ReturnData", True):
            continue
        mine = [(when, value) for qid, when, value in chunk if qid == query["Id"]]
        results.append({"Id": query["Id"], "Label": labels[query["Id"]],
                        "Timestamps": [when for when, _ in mine],
                        "Values": [value for _, value in mine],
                        "StatusCode": "PartialData" if more else "Complete"})
    out: dict[str, Any] = {"MetricDataResults": results}
    if more:
        out["NextToken"] = paging.encode(offset + limit)
    return out


def _inputs(expression: str) -> set[str]:
    """The metric ids an expression names (every name that is not a function)."""
    import ast

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise exc.InvalidParameterValue(f"Syntax error in expression: {expression[:128]}") from None
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def _offset(token: str | None) -> int:
    return paging.decode(token, lambda t: exc.InvalidNextToken(f"The NextToken {t} is not valid"))
