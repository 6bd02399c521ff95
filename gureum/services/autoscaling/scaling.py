"""What a scaling policy decides, as EC2 Auto Scaling computes it: adjustments (change,
exact, percent with a minimum magnitude), step intervals, and target tracking's alarms
and capacity formula. Pure functions; the Auto Scaling controller applies them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from gureum.services.autoscaling import exceptions as exc

ADJUSTMENT_TYPES = ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")
PREDEFINED = {
    # type -> (namespace, metric, statistic)
    "ASGAverageCPUUtilization": ("AWS/EC2", "CPUUtilization", "Average"),
    "ASGAverageNetworkIn": ("AWS/EC2", "NetworkIn", "Average"),
    "ASGAverageNetworkOut": ("AWS/EC2", "NetworkOut", "Average"),
}
# Target tracking's alarms. AWS uses 60-s periods (3 for the high alarm, 15 for the low);
# a gureum instance is serving in under a second, so the high alarm acts on one 10-s
# period above the target and the low one, conservatively, on a minute below 90 % of it.
ALARM_PERIOD = 10
HIGH_PERIODS = 1
LOW_PERIODS = 6
LOW_FRACTION = 0.9
# When neither the policy nor the group names an instance warm-up (AWS falls back on the
# group's 300-s cooldown): how long a new instance's capacity is counted before its
# metrics can show it.
DEFAULT_WARMUP = 20


@dataclass(frozen=True)
class TrackedMetric:
    namespace: str
    name: str
    dimensions: str  # canonical JSON, as stored points
    statistic: str
    unit: str | None = None
    period: int = ALARM_PERIOD  # RequestCountPerTarget is defined per minute

    @property
    def low_periods(self) -> int:
        return LOW_PERIODS if self.period <= ALARM_PERIOD else 3


def new_capacity(current: int, adjustment_type: str, adjustment: float,
                 min_magnitude: int | None = None) -> int:
    """The desired capacity an adjustment asks for (before the group's bounds)."""
    if adjustment_type == "ExactCapacity":
        return int(adjustment)
    if adjustment_type == "ChangeInCapacity":
        return current + int(adjustment)
    change = current * adjustment / 100.0
    # As AWS: a fraction rounds away from zero only past 1; between -1 and 1 it is 1 or -1.
    step = int(change) if abs(change) >= 1 else (1 if change > 0 else -1 if change < 0 else 0)
    if min_magnitude and abs(step) < min_magnitude:
        step = min_magnitude if step > 0 else -min_magnitude
    return current + step


def step_adjustment(steps: list[dict[str, Any]], breach: float) -> float | None:
    """The ScalingAdjustment of the step whose interval holds `breach` (metric minus
    threshold); lower bounds inclusive, upper bounds exclusive, as AWS defines them."""
    for step in steps:
        lower = step.get("MetricIntervalLowerBound")
        upper = step.get("MetricIntervalUpperBound")
        if (lower is None or breach >= lower) and (upper is None or breach < upper):
            return float(step["ScalingAdjustment"])
    return None


def check_steps(steps: list[dict[str, Any]]) -> None:
    if not steps:
        raise exc.ValidationError("StepAdjustments are required for a StepScaling policy")
    spans = sorted((s.get("MetricIntervalLowerBound", -math.inf),
                    s.get("MetricIntervalUpperBound", math.inf)) for s in steps)
    for (lo, hi) in spans:
        if lo >= hi:
            raise exc.ValidationError("The lower bound of a step must be less than its upper "
                                      "bound")
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        if hi != lo:
            raise exc.ValidationError("Step adjustments must not overlap or leave gaps "
                                      "between them")


def tracked_metric(group_name: str, config: dict[str, Any]) -> TrackedMetric:
    predefined = config.get("PredefinedMetricSpecification")
    custom = config.get("CustomizedMetricSpecification")
    if bool(predefined) == bool(custom):
        raise exc.ValidationError("Exactly one of PredefinedMetricSpecification and "
                                  "CustomizedMetricSpecification is required")
    if predefined:
        kind = predefined["PredefinedMetricType"]
        if kind == "ALBRequestCountPerTarget":
            label = predefined.get("ResourceLabel") or ""
            _, sep, tg = label.partition("/targetgroup/")
            if not label.startswith("app/") or not sep or tg.count("/") != 1:
                raise exc.ValidationError("ALBRequestCountPerTarget needs a ResourceLabel "
                                          "app/<load-balancer>/<id>/targetgroup/<name>/<id>")
            return TrackedMetric("AWS/ApplicationELB", "RequestCountPerTarget",
                                 json.dumps([["TargetGroup", "targetgroup/" + tg]]), "Sum",
                                 period=60)
        if kind not in PREDEFINED:
            raise exc.ValidationError(f"Predefined metric type {kind[:64]} is not offered; "
                                      f"offered: {', '.join(PREDEFINED)}, "
                                  "ALBRequestCountPerTarget")
        namespace, name, statistic = PREDEFINED[kind]
        return TrackedMetric(namespace, name,
                             json.dumps([["AutoScalingGroupName", group_name]]), statistic)
    if custom.get("Metrics"):
        raise exc.ValidationError("Metric math in a customized metric is not offered yet")
    for needed in ("MetricName", "Namespace", "Statistic"):
        if not custom.get(needed):
            raise exc.ValidationError(f"CustomizedMetricSpecification needs {needed}")
    dims = json.dumps(sorted([d["Name"], d["Value"]] for d in custom.get("Dimensions") or []))
    return TrackedMetric(custom["Namespace"], custom["MetricName"], dims, custom["Statistic"],
                         custom.get("Unit"))


def target_capacity(in_service: int, value: float, target: float) -> int:
    """AWS's formula: capacity in proportion to how far the metric is from its target."""
    return math.ceil(in_service * value / target) if target > 0 else in_service
