"""The Auto Scaling controller: keeps each group at its desired capacity of healthy
instances, as EC2 Auto Scaling does.

Each pass, per group:
1. alarms in ALARM that name one of its policies change the desired capacity;
2. a launch asked for but not recorded (a crash between RunInstances and the record)
   is finished with the same client token, so it never launches twice;
3. members are checked: a pending instance that runs joins its target groups and goes
   InService; one that was stopped, terminated or died (EC2 health), or that its target
   groups call unhealthy after the grace period (ELB health), is taken out of service;
4. capacity follows the desired count: launches spread over the subnets, and the
   termination policy picks who leaves on scale-in;
5. leaving members are deregistered, wait for their targets to drain, and terminate.

Every launch and termination is a scaling activity with its cause in AWS's words. The
controller calls the same EC2 and ELBv2 handlers a user would, as the group's account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext
from gureum.controllers.loop import ResyncLoop
from gureum.crashpoints import crashpoint
from gureum.errors import ApiError
from gureum.hosts import registry
from gureum.services.autoscaling import hooks, refresh
from gureum.services.autoscaling import policies as policy_mod
from gureum.services.autoscaling import resources as res
from gureum.services.autoscaling.handlers import schedules
from gureum.services.autoscaling.handlers.groups import remove_group
from gureum.services.ec2.exceptions import InsufficientInstanceCapacity
from gureum.services.ec2.handlers import common, launch_templates
from gureum.services.ec2.handlers.instances import run_instances
from gureum.services.ec2.handlers.lifecycle import begin_termination
from gureum.services.elbv2.handlers.targets import deregister_targets, register_targets
from gureum.store import models
from gureum.store.autoscaling_models import (
    AutoScalingGroup,
    GroupInstance,
    GroupTag,
    ScalingActivity,
    ScheduledAction,
)
from gureum.store.elbv2_models import TargetGroup
from gureum.store.models import utcnow

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.autoscaling")
GONE = ("stopping", "stopped", "shutting-down", "terminated")
ACTIVITY_HISTORY = dt.timedelta(weeks=6)
PRUNE_EVERY = 3600.0
JOIN_DEADLINE = 30.0  # seconds of failing registrations before the launch counts as failed
MAX_LAUNCH_BACKOFF = 60


class AutoScalingController(ResyncLoop):
    name = "autoscaling-controller"
    resync_seconds = 2.0

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.join_failures: dict[str, float] = {}  # instance -> when registering first failed
        self._pruned = 0.0

    def sync(self) -> None:
        if time.monotonic() - self._pruned > PRUNE_EVERY:  # as AWS: six weeks of history
            self._pruned = time.monotonic()
            with self.cloud.store.write() as s:
                s.execute(delete(ScalingActivity).where(
                    ScalingActivity.ended_at < utcnow() - ACTIVITY_HISTORY))
        with self.cloud.store.read() as s:
            groups = [(g.arn, g.account_id) for g in s.scalars(select(AutoScalingGroup))]
        for arn, account in groups:  # one broken group never stalls the others
            try:
                self.reconcile(arn, account)
            except Exception:
                log.exception("auto scaling group %s: pass failed", arn.rsplit("/", 1)[-1])

    def _ctx(self, account_id: str) -> RequestContext:
        return RequestContext(self.cloud, account_id, str(uuid.uuid4()), self.cloud.config.region)

    def reconcile(self, arn: str, account_id: str) -> None:
        ctx = self._ctx(account_id)
        self._run_scheduled(arn)
        policy_mod.run_alarm_actions(self.cloud.store, arn)
        self._finish_recorded_launches(ctx, arn)
        self._check_members(ctx, arn)
        self._roll_refresh(arn)
        self._follow_capacity(ctx, arn)
        self._retire_leavers(ctx, arn)

    # -- schedules and refreshes -----------------------------------------------------------
    def _run_scheduled(self, arn: str) -> None:
        now = utcnow()
        with self.cloud.store.read() as s:
            due = s.scalar(select(ScheduledAction.arn).where(
                ScheduledAction.group_arn == arn, ScheduledAction.next_run_at <= now).limit(1))
        if due is None:
            return
        with self.cloud.store.write() as s:
            g = s.get(AutoScalingGroup, arn)
            if g is None or g.status or "ScheduledActions" in g.suspended_processes:
                return
            for act in s.scalars(select(ScheduledAction).where(
                    ScheduledAction.group_arn == arn, ScheduledAction.next_run_at <= now)):
                g.min_size = act.min_size if act.min_size is not None else g.min_size
                g.max_size = act.max_size if act.max_size is not None else g.max_size
                g.min_size = min(g.min_size, g.max_size)
                desired = act.desired_capacity if act.desired_capacity is not None \
                    else g.desired_capacity
                desired = max(g.min_size, min(g.max_size, desired))
                res.set_desired(g, desired, (
                    f"a scheduled action update of AutoScalingGroup constraints to min: "
                    f"{g.min_size}, max: {g.max_size}, desired: {desired}"))
                act.next_run_at = schedules.next_run(act, now)
                if act.next_run_at is None:  # as AWS: a one-time action is gone once run
                    s.delete(act)

    def _roll_refresh(self, arn: str) -> None:
        with self.cloud.store.read() as s:
            if refresh.active(s, arn) is None:
                return
        with self.cloud.store.write() as s:
            g = s.get(AutoScalingGroup, arn)
            current = refresh.active(s, arn)
            if g is None or current is None or "InstanceRefresh" in g.suspended_processes:
                return
            refresh.step(s, g, current, utcnow())

    # -- launches --------------------------------------------------------------------------
    def _finish_recorded_launches(self, ctx: RequestContext, arn: str) -> None:
        with self.cloud.store.read() as s:
            pending = [a.activity_id for a in s.scalars(select(ScalingActivity).where(
                ScalingActivity.group_arn == arn, ScalingActivity.kind == "launch",
                ScalingActivity.status_code == "InProgress",
                ScalingActivity.instance_id.is_(None)))]
        for activity_id in pending:
            self._launch(ctx, activity_id)

    def _start_launch(self, s: Session, g: AutoScalingGroup, subnet_id: str,
                      counted: int) -> str:
        """Record a launch before asking for it: its activity holds the client token."""
        version = refresh.current_version(s, g)
        cause = (f"{g.capacity_cause}  At {res.stamp()} an instance was started in response "
                 "to a difference between desired and actual capacity, increasing the "
                 f"capacity from {counted} to {g.desired_capacity}.").strip()
        row = res.activity(s, g, "launch", "Launching a new EC2 instance", cause,
                           subnet_id=subnet_id, progress=0, launch_version=version,
                           launch_template_id=g.launch_template_id, status_code="InProgress")
        row.client_token = row.activity_id
        return row.activity_id

    def _launch(self, ctx: RequestContext, activity_id: str) -> None:
        store = self.cloud.store
        with store.read() as s:
            act = s.get(ScalingActivity, activity_id)
            g = s.get(AutoScalingGroup, act.group_arn)
            if g is None:
                return
            adopted = s.scalar(select(models.Instance.instance_id).where(
                models.Instance.account_id == g.account_id,
                models.Instance.client_token == act.client_token))
            params, failure = None, None
            try:  # a template version deleted since: this launch fails, the group goes on
                params = None if adopted else self._run_params(s, g, act)
            except ApiError as err:
                failure = err
            # As AWS: a zone without capacity (its hosts lost or full) is skipped for the
            # group's other zones, fewest members first.
            counts = {sub: 0 for sub in g.subnet_ids}
            for m in res.members(s, g.arn):
                counts[m.subnet_id] = counts.get(m.subnet_id, 0) + 1
            fallbacks = sorted((sub for sub in g.subnet_ids if sub != act.subnet_id),
                               key=lambda sub: counts[sub])
        if failure is not None:
            self._launch_failed(activity_id, failure)
            return
        crashpoint("autoscaling.launch_recorded")
        instance_id = adopted
        if instance_id is None:
            try:
                instance_id = self._run_for_group(ctx, act.group_arn, params, fallbacks)
            except ApiError as err:
                self._launch_failed(activity_id, err)
                return
        crashpoint("autoscaling.instance_launched")
        with store.write() as s:
            act = s.get(ScalingActivity, activity_id)
            g = s.get(AutoScalingGroup, act.group_arn)
            inst = s.get(models.Instance, instance_id)
            if g is None or inst is None:
                return
            act.instance_id, act.progress, act.subnet_id = instance_id, 30, inst.subnet_id
            act.description = f"Launching a new EC2 instance: {instance_id}"
            act.status_code = "PreInService"
            if s.get(GroupInstance, instance_id) is None:
                s.add(GroupInstance(
                    instance_id=instance_id, group_arn=g.arn, lifecycle_state="Pending",
                    health_status="Healthy", protected=g.protect_new_instances,
                    launch_template_version=act.launch_version or g.launch_template_version,
                    launch_template_id=act.launch_template_id or g.launch_template_id,
                    availability_zone=inst.availability_zone, subnet_id=inst.subnet_id,
                    launched_at=utcnow()))
            common.put_tags(s, g.account_id, instance_id, [("aws:autoscaling:groupName", g.name)])
            g.launch_failures, g.next_launch_at = 0, None

    @staticmethod
    def _run_for_group(ctx: RequestContext, arn: str, params: dict[str, Any],
             fallbacks: list[str]) -> str:
        """RunInstances for the group (placement spreads its instances across hosts),
        in its next subnet while the chosen one's zone has no capacity."""
        ctx = dataclasses.replace(ctx, spread_group=arn)
        while True:
            try:
                return run_instances(ctx, params)["Instances"][0]["InstanceId"]
            except InsufficientInstanceCapacity as err:
                if not fallbacks:
                    raise
                log.info("auto scaling: %s; trying the group's next zone", err.message)
                params, fallbacks = _in_subnet(params, fallbacks[0]), fallbacks[1:]

    def _run_params(self, s: Session, g: AutoScalingGroup, act: ScalingActivity) -> dict[str, Any]:
        """RunInstances as the group asks it: the template version, the chosen subnet (the
        template's interface keeps its groups and public-address choice), propagated tags."""
        template_id = act.launch_template_id or g.launch_template_id
        template = s.get(models.LaunchTemplate, template_id)
        data = launch_templates.version(s, template, act.launch_version).data if template else {}
        params: dict[str, Any] = {
            "LaunchTemplate": {"LaunchTemplateId": template_id,
                               "Version": act.launch_version},
            "MinCount": 1, "MaxCount": 1, "ClientToken": act.client_token}
        interfaces = data.get("NetworkInterfaces") or []
        if interfaces:
            params["NetworkInterfaces"] = [{**interfaces[0], "SubnetId": act.subnet_id,
                                            "DeviceIndex": 0}]
        else:
            params["SubnetId"] = act.subnet_id
        tags = [{"Key": t.key, "Value": t.value} for t in s.scalars(select(GroupTag).where(
            GroupTag.group_arn == g.arn, GroupTag.propagate_at_launch.is_(True)))]
        specs = [spec for spec in data.get("TagSpecifications") or []
                 if spec.get("ResourceType") != "instance"]
        template_tags = [t for spec in data.get("TagSpecifications") or []
                         if spec.get("ResourceType") == "instance" for t in spec.get("Tags", [])]
        merged = {t["Key"]: t for t in template_tags + tags}  # the group's tags win
        if merged:
            specs.append({"ResourceType": "instance", "Tags": list(merged.values())})
        if specs:
            params["TagSpecifications"] = specs
        return params

    def _launch_failed(self, activity_id: str, err: ApiError) -> None:
        with self.cloud.store.write() as s:
            act = s.get(ScalingActivity, activity_id)
            g = s.get(AutoScalingGroup, act.group_arn)
            act.description = f"Launching a new EC2 instance.  Status Reason: {err.message}"
            res.finish(act, "Failed", err.message)
            if g is not None:  # as AWS, failed launches back off
                g.launch_failures += 1
                delay = min(MAX_LAUNCH_BACKOFF, 2 ** g.launch_failures)
                g.next_launch_at = utcnow() + dt.timedelta(seconds=delay)
        log.warning("auto scaling launch failed: %s", err.message)

    # -- members ---------------------------------------------------------------------------
    def _check_members(self, ctx: RequestContext, arn: str) -> None:
        joining: list[str] = []
        with self.cloud.store.write() as s:
            g = s.get(AutoScalingGroup, arn)
            if g is None:
                return
            now = utcnow()
            lost = set(registry.lost_since(s))
            for m in res.members(s, arn):
                inst = s.get(models.Instance, m.instance_id)
                if m.lifecycle_state.startswith("Pending") and (inst is None or inst.state in GONE):
                    res.retire(s, g, m, f"At {res.stamp()} an instance was taken out of service "
                               "in response to an EC2 instance status check failure.")
                elif m.lifecycle_state == "Pending" and inst.state == "running":
                    hook = hooks.hook_for(s, arn, hooks.LAUNCHING)
                    if hook is None:
                        joining.append(m.instance_id)
                    else:
                        hooks.wait(m, hook, "Pending:Wait", now)
                        _launch_activity_status(s, m.instance_id, "MidLifecycleAction")
                elif m.lifecycle_state == "Pending:Wait":
                    result = hooks.outcome(s, m, now)
                    if result == "CONTINUE":
                        m.lifecycle_state = "Pending:Proceed"
                        joining.append(m.instance_id)
                    elif result == "ABANDON":
                        _launch_activity_status(s, m.instance_id, "Cancelled", (
                            f"Instance failed to complete user's Lifecycle Action: Lifecycle "
                            f"Action with token {m.action_token} was abandoned: Lifecycle "
                            "Action Completed with ABANDON Result"))
                        res.retire(s, g, m, f"At {res.stamp()} an instance was taken out of "
                                   "service: its launching lifecycle action was abandoned.")
                elif m.lifecycle_state == "Pending:Proceed":
                    joining.append(m.instance_id)
                if m.lifecycle_state != "InService":
                    continue
                if "HealthCheck" not in g.suspended_processes and m.health_status == "Healthy":
                    m.health_status = _health(s, g, m, inst, now, lost)
                if m.health_status == "Unhealthy" and "ReplaceUnhealthy" not in g.suspended_processes:
                    res.retire(s, g, m, m.leaving_cause or (
                        f"At {res.stamp()} an instance was taken out of service in response "
                        "to a health check."))
        for instance_id in joining:
            self._join(ctx, arn, instance_id)

    def _join(self, ctx: RequestContext, arn: str, instance_id: str) -> None:
        """A running instance enters its target groups, then service."""
        with self.cloud.store.read() as s:
            g = s.get(AutoScalingGroup, arn)
            inst = s.get(models.Instance, instance_id)
            if g is None or inst is None:
                return
            targets = [] if "AddToLoadBalancer" in g.suspended_processes else [
                (tg.arn, instance_id if tg.target_type == "instance" else inst.private_ip)
                for tg in (s.get(TargetGroup, a) for a in g.target_group_arns) if tg]
        done: list[list[str]] = []
        failure = None
        try:
            for tg_arn, target_id in targets:
                register_targets(ctx, {"TargetGroupArn": tg_arn, "Targets": [{"Id": target_id}]})
                done.append([tg_arn, target_id])
        except ApiError as err:
            failure = err.message
        with self.cloud.store.write() as s:
            m = s.get(GroupInstance, instance_id)
            g = s.get(AutoScalingGroup, arn)
            if m is None or g is None or m.lifecycle_state not in ("Pending", "Pending:Proceed"):
                return
            m.registered_targets = [list(t) for t in {tuple(t) for t in
                                                      (m.registered_targets or []) + done}]
            if failure is None:
                self.join_failures.pop(instance_id, None)
                m.lifecycle_state, m.in_service_at = "InService", utcnow()
                _launch_activity_status(s, instance_id, "Successful")
                return
            # Failures are counted here, not written: a commit would wake this loop at once.
            first = self.join_failures.setdefault(instance_id, time.monotonic())
            log.warning("instance %s: registering with its target groups failed: %s",
                        instance_id, failure)
            if time.monotonic() - first >= JOIN_DEADLINE:  # as AWS: the launch failed
                self.join_failures.pop(instance_id, None)
                _launch_activity_status(s, instance_id, "Failed",
                                        f"Registering with the target groups failed: {failure}")
                res.retire(s, g, m, f"At {res.stamp()} an instance was taken out of service: "
                           f"it could not be registered with its target groups ({failure}).")


    # -- capacity --------------------------------------------------------------------------
    def _follow_capacity(self, ctx: RequestContext, arn: str) -> None:
        launches: list[str] = []
        with self.cloud.store.write() as s:
            g = s.get(AutoScalingGroup, arn)
            if g is None:
                return
            rows = res.members(s, arn)
            counted = [m for m in rows if m.lifecycle_state in res.COUNTED]
            in_flight = list(s.scalars(select(ScalingActivity).where(
                ScalingActivity.group_arn == arn, ScalingActivity.kind == "launch",
                ScalingActivity.status_code == "InProgress",
                ScalingActivity.instance_id.is_(None))))
            have = len(counted) + len(in_flight)
            wanted = g.desired_capacity + refresh.surge(s, g)
            now = utcnow()
            if have < wanted and "Launch" not in g.suspended_processes \
                    and not g.status and (g.next_launch_at is None or g.next_launch_at <= now):
                per_subnet = {sub: 0 for sub in g.subnet_ids}
                for m in counted:
                    per_subnet[m.subnet_id] = per_subnet.get(m.subnet_id, 0) + 1
                for a in in_flight:
                    per_subnet[a.subnet_id] = per_subnet.get(a.subnet_id, 0) + 1
                for _ in range(wanted - have):
                    subnet = min(g.subnet_ids, key=lambda sub: per_subnet[sub])
                    per_subnet[subnet] += 1
                    launches.append(self._start_launch(s, g, subnet, have))
            elif have > wanted and ("Terminate" not in g.suspended_processes or g.status):
                excess = have - wanted
                current = (g.launch_template_id, refresh.current_version(s, g))
                for m in _victims(g, counted, excess, current):
                    res.retire(s, g, m, (
                        f"{g.capacity_cause}  At {res.stamp()} an instance was taken out of "
                        "service in response to a difference between desired and actual "
                        f"capacity, shrinking the capacity from {have} to "
                        f"{g.desired_capacity}.  At {res.stamp()} instance {m.instance_id} "
                        "was selected for termination.").strip())
        for activity_id in launches:
            self._launch(ctx, activity_id)

    # -- leaving ---------------------------------------------------------------------------
    def _retire_leavers(self, ctx: RequestContext, arn: str) -> None:
        with self.cloud.store.read() as s:
            g = s.get(AutoScalingGroup, arn)
            if g is None:
                return
            deleting = bool(g.status)
            leaving = [m.instance_id for m in res.members(s, arn)
                       if m.lifecycle_state.startswith("Terminating")
                       or m.lifecycle_state == "Detaching"]
            detaching = {m.instance_id for m in res.members(s, arn)
                         if m.lifecycle_state == "Detaching"}
            registered: dict[str, list[tuple[str, str, bool]]] = {}
            for m in res.members(s, arn):
                if m.instance_id in leaving:
                    registered[m.instance_id] = [
                        (t.target_group_arn, t.target_id, t.draining_until is not None)
                        for t in res.member_targets(s, g, m)]
        for instance_id in leaving:
            held = registered[instance_id]
            for tg_arn, target_id, draining in held:
                if not draining:
                    try:
                        deregister_targets(ctx, {"TargetGroupArn": tg_arn,
                                                 "Targets": [{"Id": target_id}]})
                    except ApiError as err:
                        log.warning("deregistering %s: %s", instance_id, err.message)
            if held and not deleting:
                continue  # as AWS: terminate only once connections have drained
            if not deleting and instance_id not in detaching and \
                    not self._terminating_hook_done(arn, instance_id):
                continue
            crashpoint("autoscaling.drained")
            if instance_id in detaching:
                self._detached(instance_id)
            else:
                self._terminate(ctx, arn, instance_id)
        if deleting:
            with self.cloud.store.write() as s:
                g = s.get(AutoScalingGroup, arn)
                if g is not None and not res.members(s, arn):
                    remove_group(s, g)

    def _terminating_hook_done(self, arn: str, instance_id: str) -> bool:
        """Whether a leaving member may terminate now: no terminating hook, or its
        lifecycle action has a result (given or by timeout). Either result proceeds."""
        with self.cloud.store.write() as s:
            m = s.get(GroupInstance, instance_id)
            # An instance that never served (an abandoned or failed launch) has nothing
            # to finish: no terminating hook for it.
            if m is None or m.lifecycle_state == "Terminating:Proceed" or m.in_service_at is None:
                return True
            now = utcnow()
            if m.lifecycle_state == "Terminating":
                hook = hooks.hook_for(s, arn, hooks.TERMINATING)
                if hook is None:
                    return True
                hooks.wait(m, hook, "Terminating:Wait", now)
                return False
            if hooks.outcome(s, m, now) is None:
                return False
            m.lifecycle_state = "Terminating:Proceed"
            return True

    def _terminate(self, ctx: RequestContext, arn: str, instance_id: str) -> None:
        with self.cloud.store.read() as s:
            inst = s.get(models.Instance, instance_id)
            state = inst.state if inst is not None else "terminated"
        if state not in ("shutting-down", "terminated"):
            # Not the API call: termination protection does not stop Auto Scaling (AWS).
            with self.cloud.store.write() as s:
                inst = s.get(models.Instance, instance_id)
                if inst is not None and inst.state not in ("shutting-down", "terminated"):
                    begin_termination(inst, "Auto Scaling")
        with self.cloud.store.write() as s:
            act = s.scalar(select(ScalingActivity).where(
                ScalingActivity.instance_id == instance_id, ScalingActivity.kind == "terminate",
                ScalingActivity.status_code == "InProgress"))
            inst = s.get(models.Instance, instance_id)
            if act is not None:
                act.progress = 50
            if inst is None or inst.state == "terminated":
                if act is not None:
                    res.finish(act, "Successful")
                m = s.get(GroupInstance, instance_id)
                if m is not None:
                    s.delete(m)


    def _detached(self, instance_id: str) -> None:
        with self.cloud.store.write() as s:
            m = s.get(GroupInstance, instance_id)
            if m is not None:
                s.delete(m)
            for act in s.scalars(select(ScalingActivity).where(
                    ScalingActivity.instance_id == instance_id, ScalingActivity.kind == "detach",
                    ScalingActivity.status_code == "InProgress")):
                res.finish(act, "Successful")


def _in_subnet(params: dict[str, Any], subnet_id: str) -> dict[str, Any]:
    if "NetworkInterfaces" in params:
        return {**params, "NetworkInterfaces": [{**params["NetworkInterfaces"][0],
                                                 "SubnetId": subnet_id}]}
    return {**params, "SubnetId": subnet_id}


def _health(s: Session, g: AutoScalingGroup, m: GroupInstance, inst: models.Instance | None,
            now: dt.datetime, lost_hosts: set[str]) -> str:
    """EC2 health always (a lost host fails its instances' system status check); ELB
    health too when the group asks, after its grace period."""
    if inst is None or inst.state in GONE:
        m.leaving_cause = (f"At {res.stamp()} an instance was taken out of service in response "
                           "to an EC2 health check indicating it has been terminated or stopped.")
        return "Unhealthy"
    if inst.host_id in lost_hosts:
        m.leaving_cause = (f"At {res.stamp()} an instance was taken out of service in response "
                           "to an EC2 instance status checks failure.")
        return "Unhealthy"
    after_grace = (now - m.launched_at).total_seconds() >= g.health_check_grace_period
    if g.health_check_type == "ELB" and g.target_group_arns and m.in_service_at is not None \
            and after_grace and any(t.draining_until is None and t.health == "unhealthy"
                                    for t in res.member_targets(s, g, m)):
        m.leaving_cause = (f"At {res.stamp()} an instance was taken out of service in "
                           "response to an ELB system health check failure.")
        return "Unhealthy"
    return "Healthy"


def _victims(g: AutoScalingGroup, counted: list[GroupInstance], excess: int,
             current: tuple[str, str]) -> list[GroupInstance]:
    """Who leaves on scale-in, by the group's termination policy (protected instances
    never): pending before in service, then the policy's order, then the most crowded
    subnet first so the rest stay balanced."""
    # Protection holds against scale-in, not against deleting the group (as AWS).
    candidates = [m for m in counted if g.status or not m.protected]
    policy = (g.termination_policies or ["Default"])[0]

    def order(m: GroupInstance) -> tuple:
        age = m.launched_at.timestamp()
        if policy == "NewestInstance":
            key: tuple = (-age,)
        elif policy == "OldestInstance":
            key = (age,)
        else:  # Default and OldestLaunchTemplate: off-template first, then oldest
            key = (0 if refresh.template_of(m) != current else 1, age)
        return (0 if m.lifecycle_state.startswith("Pending") else 1,) + key
    return sorted(candidates, key=order)[:excess]


def _launch_activity_status(s: Session, instance_id: str, status: str,
                            message: str | None = None) -> None:
    act = s.scalar(select(ScalingActivity).where(
        ScalingActivity.instance_id == instance_id, ScalingActivity.kind == "launch"))
    if act is None or act.status_code in ("Successful", "Cancelled", "Failed"):
        return
    if status == "MidLifecycleAction":
        act.status_code, act.progress = status, 40
    else:
        res.finish(act, status, message)

