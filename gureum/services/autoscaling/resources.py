"""Finding Auto Scaling resources, their ARNs, activities and views, shared by the
handlers and the Auto Scaling controller."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api import paging
from gureum.services.autoscaling import exceptions as exc
from gureum.store import models
from gureum.store.autoscaling_models import (
    AutoScalingGroup,
    GroupInstance,
    GroupTag,
    ScalingActivity,
)
from gureum.store.elbv2_models import Target
from gureum.store.models import utcnow

# Lifecycle states that hold capacity: what DesiredCapacity counts.
COUNTED = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
PROCESSES = ("Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
             "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions")


def group_arn(region: str, account_id: str, name: str) -> str:
    return (f"arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:{uuid.uuid4()}:"
            f"autoScalingGroupName/{name}")


def group(s: Session, account_id: str, name: str) -> AutoScalingGroup:
    """The named group; ValidationError as AWS words it when there is none."""
    found = s.scalar(select(AutoScalingGroup).where(AutoScalingGroup.account_id == account_id,
                                                    AutoScalingGroup.name == name))
    if found is None:
        raise exc.ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup "
                                  f"{name[:255]} not found")
    return found


def members(s: Session, group_arn_: str) -> list[GroupInstance]:
    return list(s.scalars(select(GroupInstance).where(GroupInstance.group_arn == group_arn_)
                          .order_by(GroupInstance.launched_at, GroupInstance.instance_id)))


def stamp(when: dt.datetime | None = None) -> str:
    return (when or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_desired(g: AutoScalingGroup, desired: int, why: str) -> None:
    """Change the desired capacity, remembering why in AWS's words for the activities
    that follow ("At <time> <why> changing the desired capacity from A to B.")."""
    if desired == g.desired_capacity:
        return
    g.capacity_cause = (f"At {stamp()} {why} changing the desired capacity from "
                        f"{g.desired_capacity} to {desired}.")
    g.desired_capacity = desired


def activity(s: Session, g: AutoScalingGroup, kind: str, description: str, cause: str,
             **fields: Any) -> ScalingActivity:
    values = {"details": {}, "progress": 0, "status_code": "InProgress",
              "started_at": utcnow(), **fields}
    row = ScalingActivity(activity_id=str(uuid.uuid4()), account_id=g.account_id,
                          group_name=g.name, group_arn=g.arn, kind=kind,
                          description=description, cause=cause, **values)
    s.add(row)
    return row


def finish(row: ScalingActivity, status: str, message: str | None = None) -> None:
    row.status_code, row.progress, row.ended_at = status, 100, utcnow()
    if message is not None:
        row.status_message = message


def template_spec(s: Session, g: AutoScalingGroup, version: str | None = None) -> dict[str, str]:
    template = s.get(models.LaunchTemplate, g.launch_template_id)
    return {"LaunchTemplateId": g.launch_template_id,
            "LaunchTemplateName": template.name if template else "",
            "Version": version or g.launch_template_version}


def template_names(s: Session, members: list[GroupInstance]) -> dict[str, str]:
    ids_ = {m.launch_template_id for m in members if m.launch_template_id}
    return {t.template_id: t.name for t in s.scalars(select(models.LaunchTemplate).where(
        models.LaunchTemplate.template_id.in_(ids_)))} if ids_ else {}


def instance_view(m: GroupInstance, instance_type: str, spec: dict[str, str],
                  names: dict[str, str] | None = None) -> dict[str, Any]:
    """A member as DescribeAutoScalingGroups/Instances show it: the template and version
    it was launched from (which a refresh may have changed for the group since)."""
    template_id = m.launch_template_id or spec["LaunchTemplateId"]
    launched_from = {"LaunchTemplateId": template_id,
                     "LaunchTemplateName": (names or {}).get(template_id,
                                                             spec["LaunchTemplateName"]),
                     "Version": m.launch_template_version}
    return {"InstanceId": m.instance_id, "InstanceType": instance_type,
            "AvailabilityZone": m.availability_zone, "LifecycleState": m.lifecycle_state,
            "HealthStatus": m.health_status, "LaunchTemplate": launched_from,
            "ProtectedFromScaleIn": m.protected}


def group_view(s: Session, g: AutoScalingGroup) -> dict[str, Any]:
    spec = template_spec(s, g)
    rows = members(s, g.arn)
    types = {i.instance_id: i.instance_type for i in s.scalars(select(models.Instance).where(
        models.Instance.instance_id.in_([m.instance_id for m in rows])))}
    names = template_names(s, rows)
    zones = sorted({sub.availability_zone for sub in s.scalars(select(models.Subnet).where(
        models.Subnet.subnet_id.in_(g.subnet_ids)))})
    out: dict[str, Any] = {
        "AutoScalingGroupName": g.name, "AutoScalingGroupARN": g.arn,
        "LaunchTemplate": spec, "MinSize": g.min_size, "MaxSize": g.max_size,
        "DesiredCapacity": g.desired_capacity, "DefaultCooldown": g.default_cooldown,
        "AvailabilityZones": zones, "LoadBalancerNames": [],
        "TargetGroupARNs": g.target_group_arns, "HealthCheckType": g.health_check_type,
        "HealthCheckGracePeriod": g.health_check_grace_period,
        "Instances": [instance_view(m, types.get(m.instance_id, ""), spec, names)
                      for m in rows],
        "CreatedTime": g.created_at,
        "SuspendedProcesses": [{"ProcessName": name, "SuspensionReason": "User suspended "
                                f"at {stamp(g.created_at)}"} for name in g.suspended_processes],
        "VPCZoneIdentifier": ",".join(g.subnet_ids), "EnabledMetrics": [],
        "Tags": tag_views(s, g), "TerminationPolicies": g.termination_policies or ["Default"],
        "NewInstancesProtectedFromScaleIn": g.protect_new_instances,
        "ServiceLinkedRoleARN": (f"arn:aws:iam::{g.account_id}:role/aws-service-role/"
                                 "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
        "CapacityRebalance": False,
    }
    if g.status:
        out["Status"] = g.status
    if g.default_instance_warmup is not None:
        out["DefaultInstanceWarmup"] = g.default_instance_warmup
    return out


def tag_views(s: Session, g: AutoScalingGroup) -> list[dict[str, Any]]:
    return [{"ResourceId": g.name, "ResourceType": "auto-scaling-group", "Key": t.key,
             "Value": t.value, "PropagateAtLaunch": t.propagate_at_launch}
            for t in s.scalars(select(GroupTag).where(GroupTag.group_arn == g.arn)
                               .order_by(GroupTag.key))]


def activity_view(a: ScalingActivity) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {
        "ActivityId": a.activity_id, "AutoScalingGroupName": a.group_name,
        "AutoScalingGroupARN": a.group_arn, "Description": a.description, "Cause": a.cause,
        "StartTime": a.started_at, "StatusCode": a.status_code, "Progress": a.progress,
        "Details": json.dumps({"Subnet ID": a.subnet_id, **a.details} if a.subnet_id
                              else a.details)}
    if a.ended_at is not None:
        out["EndTime"] = a.ended_at
    if a.status_message:
        out["StatusMessage"] = a.status_message
    return out


page = paging.pager(lambda token: exc.InvalidNextToken("The token is invalid."),
                    lambda n, lo, hi: exc.ValidationError(
                        f"MaxRecords must be between {lo} and {hi}"), lo=1, hi=100, default=50)


def retire(s: Session, g: AutoScalingGroup, m: GroupInstance, cause: str) -> ScalingActivity:
    """Take a member out of service: Terminating, with its termination activity. A launch
    still open for it (retired before it joined) ends Cancelled."""
    m.lifecycle_state, m.leaving_cause = "Terminating", cause
    for launch in s.scalars(select(ScalingActivity).where(
            ScalingActivity.instance_id == m.instance_id, ScalingActivity.kind == "launch",
            ScalingActivity.ended_at.is_(None))):
        finish(launch, "Cancelled", "The instance was taken out of service before it joined.")
    return activity(s, g, "terminate", f"Terminating EC2 instance: {m.instance_id}", cause,
                        instance_id=m.instance_id, subnet_id=m.subnet_id, progress=0,
                        status_code="InProgress")


def member_targets(s: Session, g: AutoScalingGroup, m: GroupInstance) -> list[Target]:
    """The target rows a member holds: exactly what it registered as when it joined (its
    private address may belong to another instance by now). Members from before that was
    recorded are matched by instance id, and by address while their instance lives."""
    if m.registered_targets:
        pairs = {tuple(t) for t in m.registered_targets}
        return [t for t in s.scalars(select(Target).where(
            Target.target_group_arn.in_({arn for arn, _ in pairs}),
            Target.target_id.in_({tid for _, tid in pairs})))
            if (t.target_group_arn, t.target_id) in pairs]
    inst = s.get(models.Instance, m.instance_id)
    ids = {m.instance_id}
    if inst is not None and inst.state not in ("shutting-down", "terminated"):
        ids.add(inst.private_ip)
    return list(s.scalars(select(Target).where(Target.target_group_arn.in_(g.target_group_arns),
                                               Target.target_id.in_(ids))))
