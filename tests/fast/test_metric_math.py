"""GetMetricData's metric math against stored points: arithmetic between series and
numbers, aggregates across and along series, paging, and AWS's errors for bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import error_code as code

from gureum.services.cloudwatch import exceptions as exc
from gureum.services.cloudwatch import expressions
from gureum.testing_inprocess import FastCloud

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=1)


def test_expressions_combine_series_and_numbers() -> None:
    a = {T0: 2.0, T1: 4.0}
    b = {T0: 1.0}
    named = {"a": a, "b": b}
    assert expressions.evaluate("a * 100 / 2", named, {}) == {T0: 100.0, T1: 200.0}
    assert expressions.evaluate("a + b", named, {}) == {T0: 3.0}  # shared timestamps only
    assert expressions.evaluate("SUM([a, b])", named, {}) == {T0: 3.0, T1: 4.0}
    assert expressions.evaluate("AVG(METRICS())", named, {}) == {T0: 1.5, T1: 4.0}
    assert expressions.evaluate("a - AVG(a)", named, {}) == {T0: -1.0, T1: 1.0}
    assert expressions.evaluate("a / (b - 1)", named, {}) == {}  # no point where it divides by 0
    assert expressions.evaluate("ABS(-a)", named, {}) == a
    for bad in ("a +", "__import__('os')", "a.real", "AVG(a)", "[a, b]", "NOPE(a)", "c * 2"):
        with pytest.raises(exc.InvalidParameterValue):
            expressions.evaluate(bad, named, {})


def test_get_metric_data_with_math_and_pages(fast: FastCloud) -> None:
    cw = fast.client("cloudwatch")
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    for name, value in (("Hits", 30.0), ("Misses", 10.0)):
        cw.put_metric_data(Namespace="MathTest", MetricData=[
            {"MetricName": name, "Timestamp": start + dt.timedelta(minutes=i), "Value": value + i}
            for i in range(5)])

    def stat(name: str) -> dict:
        return {"Metric": {"Namespace": "MathTest", "MetricName": name}, "Period": 60,
                "Stat": "Sum"}

    queries = [{"Id": "hits", "MetricStat": stat("Hits"), "ReturnData": False},
               {"Id": "misses", "MetricStat": stat("Misses"), "ReturnData": False},
               {"Id": "ratio", "Expression": "100 * hits / (hits + misses)", "Label": "Hit %"},
               {"Id": "twice", "Expression": "ratio * 2"}]
    out = cw.get_metric_data(MetricDataQueries=queries, StartTime=start,
                             EndTime=start + dt.timedelta(minutes=5), ScanBy="TimestampAscending")
    ratio, twice = out["MetricDataResults"]
    assert ratio["Label"] == "Hit %" and ratio["Values"][0] == pytest.approx(75.0)
    assert len(ratio["Values"]) == 5 and twice["Values"][0] == pytest.approx(150.0)
    first = cw.get_metric_data(MetricDataQueries=queries[:3], StartTime=start,
                               EndTime=start + dt.timedelta(minutes=5), MaxDatapoints=3)
    assert len(first["MetricDataResults"][0]["Values"]) == 3 and first["NextToken"]
    assert first["MetricDataResults"][0]["StatusCode"] == "PartialData"
    rest = cw.get_metric_data(MetricDataQueries=queries[:3], StartTime=start,
                              EndTime=start + dt.timedelta(minutes=5), MaxDatapoints=3,
                              NextToken=first["NextToken"])
    assert len(rest["MetricDataResults"][0]["Values"]) == 2 and "NextToken" not in rest
    assert code(cw.get_metric_data, MetricDataQueries=[{"Id": "x", "Expression": "y * 2"}],
                StartTime=start, EndTime=start + dt.timedelta(minutes=5)) == \
        "InvalidParameterValue"
    assert code(cw.get_metric_data, MetricDataQueries=[
        {"Id": "x", "Expression": "x + 1"}], StartTime=start,
        EndTime=start + dt.timedelta(minutes=5)) == "InvalidParameterValue"


def test_old_points_roll_into_minutes_with_exact_statistics(fast: FastCloud) -> None:
    from sqlalchemy import func, select

    from gureum.services.cloudwatch import retention
    from gureum.store.cloudwatch_models import MetricPoint, MetricSeries

    cw = fast.client("cloudwatch")
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=5)
    cw.put_metric_data(Namespace="Rollup", MetricData=[
        {"MetricName": "Lat", "Timestamp": start + dt.timedelta(seconds=10 * i),
         "Value": float(i), "StorageResolution": 1} for i in range(30)])  # 5 minutes

    def stats() -> list[dict]:
        return cw.get_metric_statistics(
            Namespace="Rollup", MetricName="Lat", StartTime=start,
            EndTime=start + dt.timedelta(minutes=5), Period=60,
            Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"])["Datapoints"]

    def rows() -> int:
        with fast.cloud.store.read() as s:
            return s.scalar(select(func.count()).select_from(MetricPoint).join(
                MetricSeries, MetricSeries.series_id == MetricPoint.series_id).where(
                MetricSeries.namespace == "Rollup")) or 0

    before = sorted(stats(), key=lambda d: d["Timestamp"])
    assert rows() == 30
    with fast.cloud.store.write() as s:
        rolled, sets = retention.compact(s, dt.datetime.now(dt.UTC))
    assert rolled >= 30 and rows() == 5
    assert sorted(stats(), key=lambda d: d["Timestamp"]) == before
    with fast.cloud.store.write() as s:
        # 15 days after these points (and only these: every other test's are recent).
        retention.compact(s, start + dt.timedelta(days=15, minutes=6))
    assert rows() == 0


def test_active_flows_count_established_connections_to_the_listeners() -> None:
    from gureum.agent.lb import nlb

    table = "\n".join([
        "ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.9 dst=10.0.1.5 sport=40000 dport=81 "
        "src=10.0.2.7 dst=10.0.0.9 sport=8080 dport=40000 [ASSURED] mark=0 zone=0 use=2",
        "ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.9 dst=10.0.1.5 sport=40001 dport=82 "
        "src=10.0.2.7 dst=10.0.0.9 sport=8080 dport=40001 [ASSURED] mark=0 zone=0 use=2",
        "ipv4 2 tcp 6 100 TIME_WAIT src=10.0.0.9 dst=10.0.1.5 sport=40002 dport=81 "
        "src=10.0.2.7 dst=10.0.0.9 sport=8080 dport=40002 [ASSURED] mark=0 zone=0 use=2",
        "ipv4 2 udp 17 20 src=10.0.0.9 dst=10.0.1.5 sport=5353 dport=81 "
        "src=10.0.1.5 dst=10.0.0.9 sport=81 dport=5353 mark=0 zone=0 use=2"])
    assert nlb.active_flows(table, "10.0.1.5", {81}) == 1
    assert nlb.active_flows(table, "10.0.1.5", {81, 82}) == 2
    assert nlb.active_flows("", "10.0.1.5", {81}) == 0
