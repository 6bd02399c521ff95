"""Instance refresh, one controller pass at a time: take out a batch of outdated members
(no more than MinHealthyPercentage allows), let the group's capacity rule launch their
replacements from the new template version, wait until those are in service, healthy
behind the target groups and warmed up, then the next batch. With MaxHealthyPercentage
above 100 the replacements come first: the group runs up to that share above its desired
capacity (`surge`) and old members leave only once new ones serve. A replacement that fails
its health check fails the refresh, and rolls it back when AutoRollback asks: the group
goes back to its previous template and the same rolling replaces the new instances."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.errors import ApiError
from gureum.services.autoscaling import resources as res
from gureum.services.ec2.handlers import launch_templates
from gureum.store import models
from gureum.store.autoscaling_models import (
    AutoScalingGroup,
    GroupInstance,
    InstanceRefresh,
    ScalingActivity,
)

ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress")
DEFAULT_MIN_HEALTHY = 90


def active(s: Session, group_arn: str) -> InstanceRefresh | None:
    return s.scalar(select(InstanceRefresh).where(InstanceRefresh.group_arn == group_arn,
                                                  InstanceRefresh.status.in_(ACTIVE)))


def current_version(s: Session, g: AutoScalingGroup) -> str:
    """The version number the group launches now (as a string); the name as given when it
    cannot be resolved (a deleted template or version: the launch will fail and say so)."""
    template = s.get(models.LaunchTemplate, g.launch_template_id)
    if template is None:
        return g.launch_template_version
    try:
        return str(launch_templates.resolved_number(s, template, g.launch_template_version))
    except ApiError:
        return g.launch_template_version


def template_of(m: GroupInstance) -> tuple[str, str]:
    return (m.launch_template_id or "", m.launch_template_version)


def _warmup(g: AutoScalingGroup, r: InstanceRefresh) -> int:
    given = r.preferences.get("InstanceWarmup")
    if given is None:
        given = g.default_instance_warmup
    return g.health_check_grace_period if given is None else given


def _end(r: InstanceRefresh, status: str, reason: str, now: dt.datetime) -> None:
    r.status, r.status_reason, r.ended_at, r.surge = status, reason, now, 0


def surge(s: Session, g: AutoScalingGroup) -> int:
    """Instances the group runs beyond its desired capacity for an instance refresh."""
    r = active(s, g.arn)
    return r.surge if r is not None else 0


def _healthy_behind_lb(s: Session, g: AutoScalingGroup, m: GroupInstance) -> bool:
    if not g.target_group_arns or "AddToLoadBalancer" in g.suspended_processes:
        return True
    states = [t.health for t in res.member_targets(s, g, m) if t.draining_until is None]
    return len(states) == len(g.target_group_arns) and set(states) == {"healthy"}


def step(s: Session, g: AutoScalingGroup, r: InstanceRefresh, now: dt.datetime) -> None:
    if r.status == "Pending":
        r.status = "InProgress"
    if r.status == "Cancelling":
        _end(r, "Cancelled", "The instance refresh was cancelled.", now)
        return
    rolling_back = r.status == "RollbackInProgress"
    since = r.rollback_started_at if rolling_back and r.rollback_started_at else r.started_at
    target = (g.launch_template_id, current_version(s, g))
    skip_matching = rolling_back or bool(r.preferences.get("SkipMatching"))
    members = res.members(s, g.arn)

    def outdated(m: GroupInstance) -> bool:
        return template_of(m) != target or (not skip_matching and m.launched_at < since)

    failed = [m for m in members if m.health_status == "Unhealthy" and m.launched_at >= since
              and template_of(m) == target]
    failed_launch = s.scalar(select(ScalingActivity.status_message).where(
        ScalingActivity.group_arn == g.arn, ScalingActivity.kind == "launch",
        ScalingActivity.status_code == "Failed", ScalingActivity.started_at >= since))
    if failed or failed_launch:
        why = (f"instance {failed[0].instance_id} failed its health check" if failed
               else f"a launch failed: {failed_launch}")
        if not rolling_back and r.preferences.get("AutoRollback"):
            g.launch_template_id = r.previous_template_id
            g.launch_template_version = r.previous_template_version
            r.status, r.rollback_started_at = "RollbackInProgress", now
            r.status_reason = f"The instance refresh failed ({why}); rolling back."
            return
        _end(r, "RollbackFailed" if rolling_back else "Failed",
             f"The instance refresh failed: {why}.", now)
        return

    live = [m for m in members if m.lifecycle_state in res.COUNTED]
    todo = sorted((m for m in live if outdated(m)), key=lambda m: m.launched_at)
    r.instances_to_update = len(todo)
    if not rolling_back:
        r.total = max(r.total, len(todo))
    warmup = _warmup(g, r)
    settled = len(live) >= g.desired_capacity + r.surge and not any(
        m.lifecycle_state.startswith("Pending")
        or (m.in_service_at is not None and (now - m.in_service_at).total_seconds() < warmup)
        # Only replacements must pass their target groups' checks: an old member failing
        # them may be the very reason for the refresh.
        or (m.launched_at >= since and not _healthy_behind_lb(s, g, m)) for m in live) and not any(
        m.lifecycle_state.startswith("Terminating") or m.lifecycle_state == "Detaching"
        for m in members)
    if not settled:
        return
    if not todo:
        if rolling_back:
            _end(r, "RollbackSuccessful", "The rollback finished: every instance is back on "
                 "the previous configuration.", now)
        else:
            _end(r, "Successful", None, now)  # type: ignore[arg-type]
        return
    room = math.floor(g.desired_capacity * r.preferences.get("MaxHealthyPercentage", 100) / 100)
    room -= g.desired_capacity
    if room > 0 and not r.surge:  # launch before terminate: new ones first
        r.surge = min(room, len(todo))
        return
    if r.surge:
        batch = min(len(todo), r.surge)
        r.surge = min(r.surge, len(todo) - batch)
    else:
        min_healthy = r.preferences.get("MinHealthyPercentage", DEFAULT_MIN_HEALTHY)
        keep = math.ceil(g.desired_capacity * min_healthy / 100)
        batch = max(1, len(live) - keep)
    for m in todo[:batch]:
        res.retire(s, g, m, (f"At {res.stamp(now)} an instance was taken out of service in "
                             f"response to an instance refresh.  At {res.stamp(now)} instance "
                             f"{m.instance_id} was selected for termination."))


def percentage(r: InstanceRefresh) -> int:
    if r.status in ("Successful", "RollbackSuccessful"):
        return 100
    if not r.total:
        return 0
    return int(100 * (r.total - r.instances_to_update) / r.total)
