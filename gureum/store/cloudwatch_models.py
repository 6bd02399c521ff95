"""CloudWatch: metric data points as their statistic sets (a raw value is a set of one)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime


class MetricSeries(Base):
    """One metric: what its points share (namespace, name, dimensions, unit), stored once."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("account_id", "namespace", "name", "dimensions", "unit"),)
    series_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    dimensions: Mapped[str] = mapped_column(String(4096))  # canonical JSON, sorted by name
    unit: Mapped[str] = mapped_column(String(32), default="None")


class MetricPoint(Base):
    """A data point as its statistic set (a raw value is a set of one)."""

    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_series_time", "series_id", "timestamp"),
                      # Raw points are only the last 3 hours: what retention rolls up.
                      Index("ix_metric_points_raw", "timestamp",
                            sqlite_where=text("resolution = 0"),
                            postgresql_where=text("resolution = 0")))
    point_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.series_id"))
    timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    sample_count: Mapped[float] = mapped_column()
    sum: Mapped[float] = mapped_column()
    minimum: Mapped[float] = mapped_column()
    maximum: Mapped[float] = mapped_column()
    # 0: as measured or put; 60: one minute's points rolled into one set (after 3 hours).
    resolution: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MetricAlarm(Base):
    __tablename__ = "metric_alarms"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    arn: Mapped[str] = mapped_column(String(512), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    namespace: Mapped[str] = mapped_column(String(255))
    metric_name: Mapped[str] = mapped_column(String(255))
    dimensions: Mapped[str] = mapped_column(String(4096))  # canonical JSON, as points
    statistic: Mapped[str] = mapped_column(String(16))
    period: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    evaluation_periods: Mapped[int] = mapped_column(Integer)
    datapoints_to_alarm: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column()
    comparison: Mapped[str] = mapped_column(String(64))
    treat_missing_data: Mapped[str] = mapped_column(String(16), default="missing")
    actions_enabled: Mapped[bool] = mapped_column(default=True)
    # OKActions, AlarmActions, InsufficientDataActions as given.
    actions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(24), default="INSUFFICIENT_DATA")
    state_reason: Mapped[str] = mapped_column(Text, default="Unchecked: Initial alarm creation")
    state_updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AlarmHistoryItem(Base):
    """What happened to an alarm: configuration updates, state changes, actions run."""

    __tablename__ = "metric_alarm_history"
    __table_args__ = (Index("ix_metric_alarm_history_alarm", "account_id", "alarm_name",
                            "timestamp"),)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    alarm_name: Mapped[str] = mapped_column(String(255))
    timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    item_type: Mapped[str] = mapped_column(String(32))  # ConfigurationUpdate | StateUpdate | Action
    summary: Mapped[str] = mapped_column(String(255))
    data: Mapped[str] = mapped_column(Text, default="{}")


class CloudWatchTag(Base):
    __tablename__ = "cloudwatch_tags"
    resource_arn: Mapped[str] = mapped_column(String(512), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
