"""How long metric data lives, as CloudWatch keeps it: points finer than a minute for 3
hours, then one statistic set per series and minute (count, sum, min and max add up, so
every statistic over a minute or longer stays exact), for 15 days."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from gureum.store.cloudwatch_models import MetricPoint, MetricSeries

FINE_FOR = dt.timedelta(hours=3)
KEPT_FOR = dt.timedelta(days=15)
MINUTE = 60


def compact(s: Session, now: dt.datetime) -> tuple[int, int]:
    """Roll raw points older than 3 hours into minute sets and drop what is older than
    15 days (series left without points go too). Returns (raw points rolled, minute
    sets written)."""
    cutoff = dt.datetime.fromtimestamp(int((now - FINE_FOR).timestamp()) // MINUTE * MINUTE,
                                       dt.UTC)
    for series_id in list(s.scalars(select(MetricSeries.series_id))):  # the index per series
        s.execute(delete(MetricPoint).where(MetricPoint.series_id == series_id,
                                            MetricPoint.timestamp < now - KEPT_FOR))
    s.execute(delete(MetricSeries).where(~exists().where(
        MetricPoint.series_id == MetricSeries.series_id)))
    raw = (MetricPoint.resolution == 0, MetricPoint.timestamp < cutoff)
    sets: dict[tuple[int, int], list[float]] = {}
    rolled = 0
    for series_id, when, count, total, low, high in s.execute(select(
            MetricPoint.series_id, MetricPoint.timestamp, MetricPoint.sample_count,
            MetricPoint.sum, MetricPoint.minimum, MetricPoint.maximum).where(*raw)).yield_per(
            10_000):
        key = (series_id, int(when.timestamp()) // MINUTE * MINUTE)
        have = sets.get(key)
        if have is None:
            sets[key] = [count, total, low, high]
        else:
            have[0] += count
            have[1] += total
            have[2] = min(have[2], low)
            have[3] = max(have[3], high)
        rolled += 1
    if not rolled:
        return 0, 0
    s.execute(delete(MetricPoint).where(*raw))
    s.execute(insert(MetricPoint), [
        {"series_id": series_id, "timestamp": dt.datetime.fromtimestamp(minute, dt.UTC),
         "sample_count": count, "sum": total, "minimum": low, "maximum": high,
         "resolution": MINUTE}
        for (series_id, minute), (count, total, low, high) in sets.items()])
    return rolled, len(sets)
