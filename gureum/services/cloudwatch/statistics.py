"""A metric series' statistics per period: the one aggregation behind
GetMetricStatistics, GetMetricData and alarm evaluation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.store.cloudwatch_models import MetricPoint

Buckets = dict[dt.datetime, tuple[dict[str, float], str]]


def canonical_dimensions(items: list[dict[str, Any]] | None) -> str:
    return json.dumps(sorted([d["Name"], d["Value"]] for d in items or []))


def buckets(s: Session, account_id: str, namespace: str, name: str, dimensions: str,
            start: dt.datetime, end: dt.datetime, period: int, unit: str | None) -> Buckets:
    """The five statistics of one series per period in [start, end), keyed by period start."""
    query = select(MetricPoint).where(
        MetricPoint.account_id == account_id, MetricPoint.namespace == namespace,
        MetricPoint.name == name, MetricPoint.dimensions == dimensions,
        MetricPoint.timestamp >= start, MetricPoint.timestamp < end)
    if unit:
        query = query.where(MetricPoint.unit == unit)
    grouped: dict[dt.datetime, list[MetricPoint]] = {}
    for point in s.scalars(query):
        offset = int((point.timestamp - start).total_seconds()) // period * period
        grouped.setdefault(start + dt.timedelta(seconds=offset), []).append(point)
    out = {}
    for when, points in grouped.items():
        count = sum(x.sample_count for x in points)
        total = sum(x.sum for x in points)
        out[when] = ({"SampleCount": count, "Sum": total, "Average": total / count,
                      "Minimum": min(x.minimum for x in points),
                      "Maximum": max(x.maximum for x in points)}, points[0].unit)
    return out
