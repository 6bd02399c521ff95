"""A metric series' statistics per period: the one aggregation behind
GetMetricStatistics, GetMetricData and alarm evaluation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from gureum.store.cloudwatch_models import MetricPoint, MetricSeries

Buckets = dict[dt.datetime, tuple[dict[str, float], str]]
# How long a canonical dimension list may be (the stored column's width).
DIMENSIONS_WIDTH = MetricSeries.__table__.c.dimensions.type.length


def canonical_dimensions(items: list[dict[str, Any]] | None) -> str:
    return json.dumps(sorted([d["Name"], d["Value"]] for d in items or []))


def _epoch(s: Session, column: Any) -> Any:
    """Whole seconds since 1970 of a stored (naive UTC) timestamp, in SQL."""
    if s.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), Integer)


def buckets(s: Session, account_id: str, namespace: str, name: str, dimensions: str,
            start: dt.datetime, end: dt.datetime, period: int, unit: str | None) -> Buckets:
    """The five statistics of one series per period in [start, end), keyed by period
    start; aggregated by the database (a day of 10-s points is 8,640 rows)."""
    origin = int(start.timestamp())
    bucket = ((_epoch(s, MetricPoint.timestamp) - origin) // period).label("bucket")
    series = select(MetricSeries.series_id).where(
        MetricSeries.account_id == account_id, MetricSeries.namespace == namespace,
        MetricSeries.name == name, MetricSeries.dimensions == dimensions)
    if unit:
        series = series.where(MetricSeries.unit == unit)
    units = {sid: u for sid, u in s.execute(series.add_columns(MetricSeries.unit))}
    if not units:
        return {}
    query = select(bucket, func.sum(MetricPoint.sample_count), func.sum(MetricPoint.sum),
                   func.min(MetricPoint.minimum), func.max(MetricPoint.maximum),
                   func.min(MetricPoint.series_id)).where(
        MetricPoint.series_id.in_(list(units)),
        MetricPoint.timestamp >= start, MetricPoint.timestamp < end).group_by(bucket)
    out = {}
    for index, count, total, low, high, series_id in s.execute(query):
        when = start + dt.timedelta(seconds=int(index) * period)
        out[when] = ({"SampleCount": count, "Sum": total, "Average": total / count,
                      "Minimum": low, "Maximum": high}, units[series_id])
    return out
