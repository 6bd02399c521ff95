"""The metrics controller: measures every running instance on the host and records
CloudWatch's AWS/EC2 metrics, as AWS publishes them per InstanceId: CPUUtilization (CPU
time used against the instance type's vCPUs over the interval), NetworkIn/NetworkOut
(bytes), NetworkPacketsIn/NetworkPacketsOut, DiskRead/WriteBytes and Ops (the instance
disk's block device) and StatusCheckFailed; and AWS/ApplicationELB per load balancer
(RequestCount, ProcessedBytes, HTTPCode_Target_NXX_Count, ActiveConnectionCount,
TargetResponseTime) and per target group (HealthyHostCount, UnHealthyHostCount).
Measured, never estimated: the counters come from the agent (cgroup CPU time, the
instance's own network counters, each load balancer's HAProxy)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.controllers.loop import ResyncLoop
from gureum.errors import AgentUnavailable
from gureum.services.cloudwatch import alarms, history, retention, series
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.services.elbv2 import dataplane
from gureum.services.elbv2 import resources as res
from gureum.store import models
from gureum.store.autoscaling_models import AutoScalingGroup, GroupInstance
from gureum.store.cloudwatch_models import AlarmHistoryItem, MetricAlarm
from gureum.store.elbv2_models import Listener, LoadBalancer
from gureum.store.models import utcnow

if TYPE_CHECKING:
    from gureum.cloud import Cloud

Point = tuple[series.Key, datetime, float, float, float, float]
# How often old points are rolled into minutes and dropped (retention.py): often enough
# that one pass handles a few minutes of data, never a long write.
PRUNE_EVERY = 300.0
NAMES = (("NetworkIn", "Bytes", 1), ("NetworkOut", "Bytes", 2),
         ("NetworkPacketsIn", "Count", 3), ("NetworkPacketsOut", "Count", 4),
         ("DiskReadBytes", "Bytes", 5), ("DiskWriteBytes", "Bytes", 6),
         ("DiskReadOps", "Count", 7), ("DiskWriteOps", "Count", 8))
LB_COUNTERS = {"RequestCount": "Count", "ProcessedBytes": "Bytes",
               "HTTPCode_Target_2XX_Count": "Count", "HTTPCode_Target_3XX_Count": "Count",
               "HTTPCode_Target_4XX_Count": "Count", "HTTPCode_Target_5XX_Count": "Count"}
LB_GAUGES = {"ActiveConnectionCount": "Count", "TargetResponseTime": "Seconds"}
# A network load balancer forwards in its VPC's router: its nft counters.
NLB_COUNTERS = {"NewFlowCount": "Count", "ProcessedBytes": "Bytes"}
NLB_GAUGES = {"ActiveFlowCount": "Count"}


class MetricsController(ResyncLoop):
    name = "metrics-controller"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.resync_seconds = cloud.config.metrics_interval
        self.last: dict[str, tuple[float, list[float]]] = {}  # id -> (when, counters)
        self.lb_last: dict[str, dict[str, float]] = {}  # lb id -> counters last read
        self.started_at = utcnow()
        self._pruned = 0.0
        # Series ids this loop wrote to: 200 instances make ~1,400 points a pass, and
        # looking their series up took seven queries inside the writer lock. Forgotten
        # when retention runs (it drops series without points).
        self._series_ids: dict[series.Key, int] = {}
        self.last_stamp: datetime | None = None

    def _counters(self, running: dict[str, Any], placed: dict[str, str | None]) -> dict[str, Any]:
        """Each host measures the instances it runs; a host away is measured next time."""
        by_host: dict[str, list[str]] = {}
        for instance_id in sorted(running):
            by_host.setdefault(self.cloud.agents.key(placed.get(instance_id)), []).append(
                instance_id)
        counters: dict[str, Any] = {}
        for key, ids in by_host.items():
            if self.cloud.agents.lost(key):
                continue
            agent = self.cloud.agent_for(key or None)
            try:
                counters.update(agent.counters(ids))
            except AgentUnavailable:
                if agent is self.cloud.agent:
                    raise
        return counters

    def sync(self) -> None:
        agent = self.cloud.agent
        assert agent is not None
        with self.cloud.store.read() as s:
            live = list(s.scalars(select(models.Instance).where(
                models.Instance.state == "running")))
            running = {i.instance_id: (i.account_id, i.instance_type) for i in live}
            aggregates = _aggregate_keys(s, live)
        now = time.monotonic()
        counters = self._counters(running, {i.instance_id: i.host_id for i in live})
        # A point is stamped with the start of the interval it measures, as CloudWatch
        # stamps EC2's: a period's data is complete as soon as the period ends.
        measured_at = utcnow()
        stamp, self.last_stamp = self.last_stamp or measured_at, measured_at
        rows: list[Point] = []
        grouped: dict[tuple[str, str, str, str], list[float]] = {}
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
                (name, unit, max(0.0, values[i] - before[i])) for name, unit, i in NAMES
                if i < len(values) and i < len(before)]
            rows += [_point(account, "AWS/EC2", name, dims, stamp, value, unit)
                     for name, unit, value in measured]
            for key in aggregates.get(instance_id, ()):
                for name, unit, value in measured:
                    grouped.setdefault((account, key, name, unit), []).append(value)
        # Per group, image and type, as AWS publishes them: one statistic set each.
        rows += [((account, "AWS/EC2", name, dims, unit), stamp, float(len(values)),
                  sum(values), min(values), max(values))
                 for (account, dims, name, unit), values in grouped.items()]
        # StatusCheckFailed: a running instance whose init cannot be measured has failed
        # its instance status check (its counters come from its live init).
        for instance_id, (account, _) in running.items():
            failed = 0.0 if instance_id in counters else 1.0
            dims = json.dumps([["InstanceId", instance_id]])
            rows += [_point(account, "AWS/EC2", name, dims, stamp, failed, "Count")
                     for name in ("StatusCheckFailed", "StatusCheckFailed_Instance")]
            rows.append(_point(account, "AWS/EC2", "StatusCheckFailed_System", dims, stamp,
                               0.0, "Count"))
        for gone in set(self.last) - set(counters):
            del self.last[gone]
        rows += self._load_balancer_points(stamp)
        if rows:
            with self.cloud.store.write() as s:
                used = series.write(s, rows, known=self._series_ids)
            self._series_ids.update(used)  # committed: a rolled-back id is never kept
        self._evaluate_alarms(measured_at)
        if now - self._pruned > PRUNE_EVERY:
            self._pruned = now
            self._series_ids.clear()
            with self.cloud.store.write() as s:
                retention.compact(s, stamp)
                s.execute(delete(AlarmHistoryItem).where(
                    AlarmHistoryItem.timestamp < stamp - history.RETENTION))

    def _evaluate_alarms(self, stamp: datetime) -> None:
        """Every metric alarm against the newest data, after each measurement; a state
        changes only when the evaluation says so (a SetAlarmState holds until then)."""
        with self.cloud.store.read() as s:
            changed = {}
            for alarm in s.scalars(select(MetricAlarm)):
                verdict = alarms.evaluate(s, alarm, stamp)
                if verdict is not None and verdict[0] != alarm.state:
                    changed[alarm.arn] = verdict
        if not changed:
            return
        with self.cloud.store.write() as s:
            for arn, (state, reason) in changed.items():
                alarm = s.get(MetricAlarm, arn)
                if alarm is not None:
                    history.state_change(s, alarm, state, reason, stamp)

    def _load_balancer_points(self, stamp: datetime) -> list[Point]:
        """AWS/ApplicationELB per LoadBalancer (from its proxy's counters: a counter that
        went down means a new worker, whose count starts again), AWS/NetworkELB (its
        router's counters: NewFlowCount, ProcessedBytes), and HealthyHostCount /
        UnHealthyHostCount per TargetGroup (from the health the controller recorded)."""
        agent = self.cloud.agent
        assert agent is not None
        with self.cloud.store.read() as s:
            lbs = list(s.scalars(select(LoadBalancer).where(LoadBalancer.state.in_(
                ("active", "active_impaired")))))
            health = {}
            for lb in lbs:
                for tg_arn in res.target_groups_of_actions(
                        [a for lst in s.scalars(select(Listener).where(
                            Listener.load_balancer_arn == lb.arn)) for a in lst.default_actions]):
                    states = [t.health for t in res.targets_of(s, tg_arn)
                              if t.draining_until is None]
                    health[(lb.lb_id, tg_arn)] = (states.count("healthy"),
                                                  states.count("unhealthy"))
        rows: list[Point] = []
        for lb in lbs:
            kind = "app" if lb.type == "application" else "net"
            namespace = "AWS/ApplicationELB" if kind == "app" else "AWS/NetworkELB"
            counters, gauges = (LB_COUNTERS, LB_GAUGES) if kind == "app" else (
                NLB_COUNTERS, NLB_GAUGES)
            name = f"{kind}/" + lb.arn.split(f"loadbalancer/{kind}/", 1)[-1]
            dims = json.dumps([["LoadBalancer", name]])
            now = agent.lb_stats(lb.lb_id)
            if not now:
                continue
            before, self.lb_last[lb.lb_id] = self.lb_last.get(lb.lb_id), now
            if before is None and lb.created_at >= self.started_at:
                # Made while this controller ran: its counters began at zero, so its first
                # reading counts whole (traffic before it would be lost otherwise).
                before = {}
            values = {k: now.get(k, 0.0) for k in gauges}
            if before is not None:
                for key in counters:
                    delta = now.get(key, 0.0) - before.get(key, 0.0)
                    values[key] = delta if delta >= 0 else now.get(key, 0.0)
            units = {**counters, **gauges}
            rows += [_point(lb.account_id, namespace, key, dims, stamp, value,
                            units[key]) for key, value in values.items()]
            for (lb_id, tg_arn), (healthy, unhealthy) in health.items():
                if lb_id != lb.lb_id:
                    continue
                tg_label = "targetgroup/" + tg_arn.split(":targetgroup/", 1)[-1]
                tg_dims = json.dumps(sorted([["LoadBalancer", name], ["TargetGroup", tg_label]]))
                rows += [_point(lb.account_id, namespace, key, tg_dims, stamp,
                                value, "Count")
                         for key, value in (("HealthyHostCount", healthy),
                                            ("UnHealthyHostCount", unhealthy))]
                key = f"RequestCount/{dataplane.backend_name(tg_arn)}"
                if before is not None and key in now:
                    delta = now[key] - before.get(key, 0.0)
                    requests = delta if delta >= 0 else now[key]
                    rows.append(_point(lb.account_id, "AWS/ApplicationELB", "RequestCount",
                                       tg_dims, stamp, requests, "Count"))
                    # As AWS: the target group's requests over its healthy targets.
                    rows.append(_point(lb.account_id, "AWS/ApplicationELB",
                                       "RequestCountPerTarget",
                                       json.dumps([["TargetGroup", tg_label]]), stamp,
                                       requests / max(1, healthy), "Count"))
        for gone in set(self.lb_last) - {lb.lb_id for lb in lbs}:
            del self.lb_last[gone]
        return rows


def _aggregate_keys(s: Session, running: list[models.Instance]) -> dict[str, list[str]]:
    """The aggregate series (canonical dimensions) each running instance counts in: its
    Auto Scaling group while in service there, its image and its instance type."""
    keys = {i.instance_id: [json.dumps([["ImageId", i.image_id]]),
                            json.dumps([["InstanceType", i.instance_type]])] for i in running}
    for instance_id, group_name in s.execute(
            select(GroupInstance.instance_id, AutoScalingGroup.name).join(
                AutoScalingGroup, AutoScalingGroup.arn == GroupInstance.group_arn).where(
                GroupInstance.lifecycle_state == "InService",
                GroupInstance.instance_id.in_(list(keys)))).all():
        keys[instance_id].append(json.dumps([["AutoScalingGroupName", group_name]]))
    return keys


def _point(account: str, namespace: str, name: str, dims: str, stamp: datetime,
           value: float, unit: str) -> Point:
    return series.value((account, namespace, name, dims, unit), stamp, value)
