"""How a metric alarm decides its state, as CloudWatch does: the last EvaluationPeriods
periods of the metric, DatapointsToAlarm of them breaching (M out of N) means ALARM;
missing periods count as TreatMissingData says."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from gureum.services.cloudwatch import statistics
from gureum.store.cloudwatch_models import MetricAlarm

COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def recent(s: Session, alarm: MetricAlarm, now: dt.datetime) -> list[float | None]:
    """The alarm's statistic over its last EvaluationPeriods complete periods, oldest
    first (None where a period has no data)."""
    period = alarm.period
    # The newest complete period ends at the last multiple of the period.
    end = dt.datetime.fromtimestamp(int(now.timestamp()) // period * period, dt.UTC)
    start = end - dt.timedelta(seconds=period * alarm.evaluation_periods)
    found = statistics.buckets(s, alarm.account_id, alarm.namespace, alarm.metric_name,
                               alarm.dimensions, start, end, period, alarm.unit)
    return [found[when][0][alarm.statistic] if when in found else None
            for when in (start + dt.timedelta(seconds=period * i)
                         for i in range(alarm.evaluation_periods))]


def evaluate(s: Session, alarm: MetricAlarm, now: dt.datetime) -> tuple[str, str] | None:
    """(state, reason) the alarm should be in now; None to keep its state (`ignore`)."""
    compare = COMPARE[alarm.comparison]
    values = recent(s, alarm, now)
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    treat = alarm.treat_missing_data
    if not present and treat == "missing":
        return "INSUFFICIENT_DATA", (f"Insufficient Data: {alarm.evaluation_periods} "
                                     "datapoints were unknown.")
    if not present and treat == "ignore":
        return None
    breaching = sum(1 for v in present if compare(v, alarm.threshold))
    if treat == "breaching":
        breaching += missing
    shown = ", ".join(f"{v:g}" for v in present[-5:])
    if breaching >= alarm.datapoints_to_alarm:
        return "ALARM", (f"Threshold Crossed: {breaching} out of the last "
                         f"{alarm.evaluation_periods} datapoints [{shown}] were "
                         f"{_words(alarm.comparison)} the threshold ({alarm.threshold:g}).")
    return "OK", (f"Threshold Crossed: {breaching} out of the last {alarm.evaluation_periods} "
                  f"datapoints [{shown}] were {_words(alarm.comparison)} the threshold "
                  f"({alarm.threshold:g}), fewer than {alarm.datapoints_to_alarm}.")


def _words(comparison: str) -> str:
    return {"GreaterThanOrEqualToThreshold": "greater than or equal to",
            "GreaterThanThreshold": "greater than", "LessThanThreshold": "less than",
            "LessThanOrEqualToThreshold": "less than or equal to"}[comparison]
