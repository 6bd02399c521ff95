"""Metric alarms: PutMetricAlarm (create or update), DescribeAlarms, DeleteAlarms,
SetAlarmState, Enable/DisableAlarmActions. The alarm controller evaluates them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api import paging
from gureum.api.dispatch import RequestContext, action
from gureum.services.cloudwatch import alarms, history, statistics
from gureum.services.cloudwatch import exceptions as exc
from gureum.services.cloudwatch.handlers import tags
from gureum.services.cloudwatch.handlers.metrics import (
    STATISTICS,
    _check_period,
    _dimensions,
    check_length,
)
from gureum.store.cloudwatch_models import MetricAlarm
from gureum.store.models import utcnow

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
MISSING = ("breaching", "notBreaching", "ignore", "missing")
MAX_ALARMS = 5000


@action("monitoring", "PutMetricAlarm")
def put_metric_alarm(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Metrics") or p.get("ExtendedStatistic"):
        raise exc.InvalidParameterValue("Metric math and percentile alarms are not offered yet")
    for needed in ("MetricName", "Namespace", "Statistic", "Period", "Threshold"):
        if p.get(needed) is None:
            raise exc.MissingParameter(f"The parameter {needed} is required")
    if p["Statistic"] not in STATISTICS:
        raise exc.InvalidParameterValue(f"Statistic {p['Statistic'][:32]} is not valid")
    check_length("AlarmName", p["AlarmName"], 255)
    check_length("Namespace", p["Namespace"], 255)
    check_length("MetricName", p["MetricName"], 255)
    if len(p.get("AlarmDescription") or "") > 1024:
        raise exc.InvalidParameterValue("AlarmDescription must be at most 1024 characters")
    dimensions = _dimensions(p.get("Dimensions"))
    if p["ComparisonOperator"] not in alarms.COMPARE:
        raise exc.InvalidParameterValue(
            f"ComparisonOperator {p['ComparisonOperator']} needs an anomaly detection band, "
            "not offered yet")
    _check_period(p["Period"])
    periods = p["EvaluationPeriods"]
    to_alarm = p.get("DatapointsToAlarm", periods)
    if periods < 1 or not 1 <= to_alarm <= periods:
        raise exc.InvalidParameterValue(
            "EvaluationPeriods must be at least 1 and DatapointsToAlarm between 1 and it")
    if p["Period"] * periods > 86400 * 7:
        raise exc.InvalidParameterValue("Period x EvaluationPeriods is at most 7 days")
    treat = p.get("TreatMissingData", "missing")
    if treat not in MISSING:
        raise exc.InvalidParameterValue(f"TreatMissingData must be one of {', '.join(MISSING)}")
    now = utcnow()
    with ctx.cloud.store.write() as s:
        alarm = s.scalar(select(MetricAlarm).where(MetricAlarm.account_id == ctx.account_id,
                                                   MetricAlarm.name == p["AlarmName"]))
        created = alarm is None
        if alarm is None:
            held = len(list(s.scalars(select(MetricAlarm.arn).where(
                MetricAlarm.account_id == ctx.account_id))))
            if held >= MAX_ALARMS:
                raise exc.LimitExceeded("The alarm quota has been reached")
            alarm = MetricAlarm(
                arn=f"arn:aws:cloudwatch:{ctx.region}:{ctx.account_id}:alarm:{p['AlarmName']}",
                account_id=ctx.account_id, name=p["AlarmName"], state_updated_at=now)
            s.add(alarm)
        alarm.description = p.get("AlarmDescription")
        alarm.namespace, alarm.metric_name = p["Namespace"], p["MetricName"]
        alarm.dimensions = dimensions
        alarm.statistic, alarm.period, alarm.unit = p["Statistic"], p["Period"], p.get("Unit")
        alarm.evaluation_periods, alarm.datapoints_to_alarm = periods, to_alarm
        alarm.threshold, alarm.comparison = float(p["Threshold"]), p["ComparisonOperator"]
        alarm.treat_missing_data = treat
        alarm.actions_enabled = p.get("ActionsEnabled", True)
        alarm.actions = {key: list(p.get(key) or []) for key in
                         ("OKActions", "AlarmActions", "InsufficientDataActions")}
        alarm.updated_at = now
        s.flush()
        if created:
            tags.put(s, alarm.arn, p.get("Tags") or [])
        history.record(s, alarm, "ConfigurationUpdate",
                       f'Alarm "{alarm.name}" {"created" if created else "updated"}',
                       {"version": "1.0", "type": "Create" if created else "Update",
                        "createdAlarm" if created else "updatedAlarm": _view(alarm)}, now)
    return {}


def _view(alarm: MetricAlarm) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {
        "AlarmName": alarm.name, "AlarmArn": alarm.arn,
        "AlarmConfigurationUpdatedTimestamp": alarm.updated_at,
        "ActionsEnabled": alarm.actions_enabled, **alarm.actions,
        "StateValue": alarm.state, "StateReason": alarm.state_reason,
        "StateUpdatedTimestamp": alarm.state_updated_at,
        "StateTransitionedTimestamp": alarm.state_updated_at,
        "MetricName": alarm.metric_name, "Namespace": alarm.namespace,
        "Statistic": alarm.statistic,
        "Dimensions": [{"Name": k, "Value": v} for k, v in json.loads(alarm.dimensions)],
        "Period": alarm.period, "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm, "Threshold": alarm.threshold,
        "ComparisonOperator": alarm.comparison, "TreatMissingData": alarm.treat_missing_data}
    if alarm.description:
        out["AlarmDescription"] = alarm.description
    if alarm.unit:
        out["Unit"] = alarm.unit
    return out


@action("monitoring", "DescribeAlarms")
def describe_alarms(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("StateValue") and p["StateValue"] not in STATES:
        raise exc.InvalidParameterValue(f"StateValue must be one of {', '.join(STATES)}")
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(MetricAlarm).where(
            MetricAlarm.account_id == ctx.account_id).order_by(MetricAlarm.name)))
    names = set(p.get("AlarmNames") or [])
    rows = [a for a in rows if (not names or a.name in names)
            and a.name.startswith(p.get("AlarmNamePrefix") or "")
            and (not p.get("StateValue") or a.state == p["StateValue"])]
    if p.get("AlarmTypes") and "MetricAlarm" not in p["AlarmTypes"]:
        rows = []
    return {"MetricAlarms": [_view(a) for a in rows], "CompositeAlarms": []}


def _named(ctx: RequestContext, s: Any, names: list[str]) -> list[MetricAlarm]:
    return list(s.scalars(select(MetricAlarm).where(
        MetricAlarm.account_id == ctx.account_id, MetricAlarm.name.in_(names))))


@action("monitoring", "DeleteAlarms")
def delete_alarms(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        found = _named(ctx, s, p["AlarmNames"])
        missing = set(p["AlarmNames"]) - {a.name for a in found}
        if missing:
            raise exc.ResourceNotFound(f"Alarms not found: {', '.join(sorted(missing))[:256]}")
        for alarm in found:
            tags.forget(s, alarm.arn)
            s.delete(alarm)
    return {}


@action("monitoring", "SetAlarmState")
def set_alarm_state(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p["StateValue"] not in STATES:
        raise exc.InvalidParameterValue(f"StateValue must be one of {', '.join(STATES)}")
    with ctx.cloud.store.write() as s:
        found = _named(ctx, s, [p["AlarmName"]])
        if not found:
            raise exc.ResourceNotFound(f"Alarm {p['AlarmName'][:255]} not found")
        # As on AWS: it holds until the next evaluation says otherwise.
        history.state_change(s, found[0], p["StateValue"], p["StateReason"], utcnow())
    return {}


def _actions(ctx: RequestContext, names: list[str], enabled: bool) -> None:
    with ctx.cloud.store.write() as s:
        for alarm in _named(ctx, s, names):
            alarm.actions_enabled = enabled


@action("monitoring", "EnableAlarmActions")
def enable_alarm_actions(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _actions(ctx, p["AlarmNames"], True)
    return {}


@action("monitoring", "DisableAlarmActions")
def disable_alarm_actions(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _actions(ctx, p["AlarmNames"], False)
    return {}


@action("monitoring", "DescribeAlarmsForMetric")
def describe_alarms_for_metric(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    dims = statistics.canonical_dimensions(p.get("Dimensions"))
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(MetricAlarm).where(
            MetricAlarm.account_id == ctx.account_id, MetricAlarm.namespace == p["Namespace"],
            MetricAlarm.metric_name == p["MetricName"]).order_by(MetricAlarm.name)))
    rows = [a for a in rows if (p.get("Dimensions") is None or a.dimensions == dims)
            and (not p.get("Statistic") or a.statistic == p["Statistic"])
            and (not p.get("Period") or a.period == p["Period"])
            and (not p.get("Unit") or a.unit == p["Unit"])]
    return {"MetricAlarms": [_view(a) for a in rows]}


HISTORY_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action")


@action("monitoring", "DescribeAlarmHistory")
def describe_alarm_history(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    from gureum.services.cloudwatch.handlers.metrics import _offset
    from gureum.store.cloudwatch_models import AlarmHistoryItem

    kind = p.get("HistoryItemType")
    if kind and kind not in HISTORY_TYPES:
        raise exc.InvalidParameterValue(f"HistoryItemType must be one of {', '.join(HISTORY_TYPES)}")
    query = select(AlarmHistoryItem).where(AlarmHistoryItem.account_id == ctx.account_id)
    if p.get("AlarmName"):
        query = query.where(AlarmHistoryItem.alarm_name == p["AlarmName"])
    if kind:
        query = query.where(AlarmHistoryItem.item_type == kind)
    if p.get("StartDate"):
        query = query.where(AlarmHistoryItem.timestamp >= p["StartDate"])
    if p.get("EndDate"):
        query = query.where(AlarmHistoryItem.timestamp <= p["EndDate"])
    oldest_first = p.get("ScanBy") == "TimestampAscending"
    order = AlarmHistoryItem.item_id if oldest_first else AlarmHistoryItem.item_id.desc()
    if p.get("AlarmTypes") and "MetricAlarm" not in p["AlarmTypes"]:
        return {"AlarmHistoryItems": []}
    size = p.get("MaxRecords") or 100
    if not 1 <= size <= 100:
        raise exc.InvalidParameterValue("MaxRecords must be between 1 and 100")
    offset = _offset(p.get("NextToken"))
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(query.order_by(order).offset(offset).limit(size + 1)))
    out: dict[str, Any] = {"AlarmHistoryItems": [
        {"AlarmName": r.alarm_name, "AlarmType": "MetricAlarm", "Timestamp": r.timestamp,
         "HistoryItemType": r.item_type, "HistorySummary": r.summary, "HistoryData": r.data}
        for r in rows[:size]]}
    if len(rows) > size:
        out["NextToken"] = paging.encode(offset + size)
    return out
