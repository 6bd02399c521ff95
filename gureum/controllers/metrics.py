"""The metrics controller: measures every running instance on the host and records
CloudWatch's AWS/EC2 metrics, as AWS publishes them per InstanceId: CPUUtilization (CPU
time used against the instance type's vCPUs over the interval), NetworkIn/NetworkOut
(bytes) and NetworkPacketsIn/NetworkPacketsOut. Measured, never estimated: the counters
come from the agent (cgroup CPU time, the instance's own network counters)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from gureum.controllers.loop import ResyncLoop
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.store import models
from gureum.store.cloudwatch_models import MetricPoint
from gureum.store.models import utcnow

if TYPE_CHECKING:
    from gureum.cloud import Cloud

RETENTION = timedelta(days=15)
PRUNE_EVERY = 3600.0
NAMES = (("NetworkIn", "Bytes", 1), ("NetworkOut", "Bytes", 2),
         ("NetworkPacketsIn", "Count", 3), ("NetworkPacketsOut", "Count", 4))


class MetricsController(ResyncLoop):
    name = "metrics-controller"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.resync_seconds = cloud.config.metrics_interval
        self.last: dict[str, tuple[float, list[float]]] = {}  # id -> (when, counters)
        self._pruned = 0.0

    def sync(self) -> None:
        agent = self.cloud.agent
        assert agent is not None
        with self.cloud.store.read() as s:
            running = {i.instance_id: (i.account_id, i.instance_type) for i in s.scalars(
                select(models.Instance).where(models.Instance.state == "running"))}
        now = time.monotonic()
        counters = agent.counters(sorted(running)) if running else {}
        stamp = utcnow()
        rows = []
        for instance_id, values in counters.items():
            previous = self.last.get(instance_id)
            self.last[instance_id] = (now, values)
            if previous is None or now <= previous[0]:
                continue
            elapsed, before = now - previous[0], previous[1]
            account, instance_type = running[instance_id]
            vcpus = CATALOGUE[instance_type].vcpus if instance_type in CATALOGUE else 1
            cpu = max(0.0, min(100.0, (values[0] - before[0]) / (elapsed * vcpus) * 100))
            dims = json.dumps([["InstanceId", instance_id]])
            measured = [("CPUUtilization", "Percent", cpu)] + [
                (name, unit, max(0.0, values[i] - before[i])) for name, unit, i in NAMES]
            rows += [MetricPoint(account_id=account, namespace="AWS/EC2", name=name,
                                 dimensions=dims, timestamp=stamp, sample_count=1, sum=value,
                                 minimum=value, maximum=value, unit=unit)
                     for name, unit, value in measured]
        for gone in set(self.last) - set(counters):
            del self.last[gone]
        if rows:
            with self.cloud.store.write() as s:
                s.add_all(rows)
        if now - self._pruned > PRUNE_EVERY:
            self._pruned = now
            with self.cloud.store.write() as s:
                s.execute(delete(MetricPoint).where(MetricPoint.timestamp < stamp - RETENTION))
