"""CloudWatch: metric data points as their statistic sets (a raw value is a set of one)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_series", "account_id", "namespace", "name",
                            "dimensions", "timestamp"),)
    point_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    dimensions: Mapped[str] = mapped_column(String(4096))  # canonical JSON, sorted by name
    timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    sample_count: Mapped[float] = mapped_column()
    sum: Mapped[float] = mapped_column()
    minimum: Mapped[float] = mapped_column()
    maximum: Mapped[float] = mapped_column()
    unit: Mapped[str] = mapped_column(String(32), default="None")
