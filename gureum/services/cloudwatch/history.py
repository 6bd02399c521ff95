"""Alarm history (DescribeAlarmHistory): every configuration change, state change and
action run, worded and shaped as CloudWatch records them; kept 30 days."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from gureum.store.cloudwatch_models import AlarmHistoryItem, MetricAlarm

RETENTION = dt.timedelta(days=30)


def record(s: Session, alarm: MetricAlarm, item_type: str, summary: str,
           data: dict[str, Any], when: dt.datetime) -> None:
    s.add(AlarmHistoryItem(account_id=alarm.account_id, alarm_name=alarm.name, timestamp=when,
                           item_type=item_type, summary=summary[:255],
                           data=json.dumps(data, default=str)))


def state_change(s: Session, alarm: MetricAlarm, new_state: str, reason: str,
                 when: dt.datetime) -> None:
    """Move an alarm to a new state, with its history item."""
    old = {"stateValue": alarm.state, "stateReason": alarm.state_reason}
    alarm.state, alarm.state_reason, alarm.state_updated_at = new_state, reason, when
    record(s, alarm, "StateUpdate", f"Alarm updated from {old['stateValue']} to {new_state}",
           {"version": "1.0", "oldState": old,
            "newState": {"stateValue": new_state, "stateReason": reason}}, when)
