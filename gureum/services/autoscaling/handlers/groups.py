"""Auto Scaling groups: Create/Update/Describe/DeleteAutoScalingGroup and
SetDesiredCapacity. Handlers write the group's desired state; the Auto Scaling
controller launches, registers, replaces and terminates instances to match it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.errors import ApiError
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import resources as res
from gureum.services.ec2.handlers import launch_templates
from gureum.store import models
from gureum.store.autoscaling_models import (
    AutoScalingGroup,
    GroupInstance,
    GroupTag,
    InstanceRefresh,
    LifecycleHook,
    ScalingActivity,
    ScalingPolicy,
    ScheduledAction,
)
from gureum.store.cloudwatch_models import MetricAlarm
from gureum.store.elbv2_models import TargetGroup
from gureum.store.models import utcnow

MAX_GROUPS = 500
HEALTH_CHECK_TYPES = ("EC2", "ELB")
TERMINATION_POLICIES = ("Default", "OldestInstance", "NewestInstance",
                        "OldestLaunchTemplate", "OldestLaunchConfiguration",
                        "ClosestToNextInstanceHour", "AllocationStrategy")
# Members gureum does not apply: refused rather than stored and ignored.
NOT_OFFERED = ("LaunchConfigurationName", "MixedInstancesPolicy", "InstanceId",
               "LoadBalancerNames", "PlacementGroup", "LifecycleHookSpecificationList",
               "TrafficSources", "MaxInstanceLifetime", "CapacityRebalance",
               "AvailabilityZoneIds", "InstanceMaintenancePolicy",
               "CapacityReservationSpecification", "InstanceLifecyclePolicy")


def _refuse_unoffered(p: dict[str, Any]) -> None:
    for member in NOT_OFFERED:
        if p.get(member):
            raise exc.ValidationError(f"{member} is not supported by this cloud; use a "
                                      "LaunchTemplate and TargetGroupARNs")


def template_ref(s: Session, ctx: RequestContext, spec: dict[str, Any]) -> tuple[str, str]:
    """(template id, version as given) of a LaunchTemplate member, checked as AWS does."""
    try:
        template = launch_templates.find(s, ctx.account_id, spec.get("LaunchTemplateId"),
                                         spec.get("LaunchTemplateName"))
        version = spec.get("Version") or "$Default"
        launch_templates.version(s, template, version)
    except ApiError as err:
        raise exc.ValidationError(f"You must use a valid fully-formed launch template. "
                                  f"{err.message}") from None
    return template.template_id, version


def _subnets(s: Session, ctx: RequestContext, p: dict[str, Any]) -> list[str]:
    given = [x.strip() for x in (p.get("VPCZoneIdentifier") or "").split(",") if x.strip()]
    zones = p.get("AvailabilityZones") or []
    if not given and zones:
        for zone in zones:
            if zone != ctx.cloud.availability_zone:
                raise exc.ValidationError(f"The availability zone {zone[:32]} is not legal")
        ctx.cloud.ensure_default_network(ctx.account_id)
        return [ctx.cloud.default_subnet_id(ctx.account_id)]
    if not given:
        raise exc.ValidationError("At least one Availability Zone or VPC Subnet is required.")
    rows = []
    for subnet_id in dict.fromkeys(given):
        subnet = s.get(models.Subnet, subnet_id)
        if subnet is None or subnet.account_id != ctx.account_id:
            raise exc.ValidationError(f"The subnet ID '{subnet_id[:32]}' does not exist")
        if zones and subnet.availability_zone not in zones:
            raise exc.ValidationError(f"The subnet {subnet_id} is not in the Availability "
                                      f"Zones {', '.join(zones)}")
        rows.append(subnet)
    if len({sub.vpc_id for sub in rows}) > 1:
        raise exc.ValidationError("The subnets of an Auto Scaling group must be in one VPC")
    return [sub.subnet_id for sub in rows]


def _target_groups(s: Session, ctx: RequestContext, arns: list[str], vpc_id: str) -> list[str]:
    for arn in arns:
        tg = s.get(TargetGroup, arn)
        if tg is None or tg.account_id != ctx.account_id:
            raise exc.ValidationError("Provided Target Groups may not be valid. Please ensure "
                                      "they exist and try again.")
        if tg.vpc_id != vpc_id:
            raise exc.ValidationError(f"The target group {tg.name} is in {tg.vpc_id}, not in "
                                      f"the group's VPC {vpc_id}")
        if tg.target_type not in ("instance", "ip"):
            raise exc.ValidationError(f"The target group {tg.name} has target type "
                                      f"{tg.target_type}; instance or ip is needed")
    return list(dict.fromkeys(arns))


def _check_sizes(min_size: int, max_size: int, desired: int) -> None:
    if min_size < 0 or max_size < 0:
        raise exc.ValidationError("MinSize and MaxSize must not be negative")
    if min_size > max_size:
        raise exc.ValidationError(f"Max bound, {max_size}, must be greater than or equal to "
                                  f"min bound, {min_size}")
    if not min_size <= desired <= max_size:
        raise exc.ValidationError(f"Desired capacity:{desired} must be between the specified "
                                  f"min size:{min_size} and max size:{max_size}")


def _settings(g: AutoScalingGroup, p: dict[str, Any]) -> None:
    """The members Create and Update share, applied where given."""
    if p.get("HealthCheckType") is not None:
        if p["HealthCheckType"] not in HEALTH_CHECK_TYPES:
            raise exc.ValidationError(f"Invalid health check type {p['HealthCheckType'][:32]}; "
                                      f"valid types: {', '.join(HEALTH_CHECK_TYPES)}")
        g.health_check_type = p["HealthCheckType"]
    for member, column, hi in (("HealthCheckGracePeriod", "health_check_grace_period", 7200),
                               ("DefaultCooldown", "default_cooldown", 86400),
                               ("DefaultInstanceWarmup", "default_instance_warmup", 86400)):
        if p.get(member) is not None:
            if not 0 <= p[member] <= hi:
                raise exc.ValidationError(f"{member} must be between 0 and {hi}")
            setattr(g, column, p[member])
    if p.get("TerminationPolicies"):
        bad = [x for x in p["TerminationPolicies"] if x not in TERMINATION_POLICIES]
        if bad:
            raise exc.ValidationError(f"Invalid termination policy {bad[0][:64]}")
        g.termination_policies = list(p["TerminationPolicies"])
    if p.get("NewInstancesProtectedFromScaleIn") is not None:
        g.protect_new_instances = p["NewInstancesProtectedFromScaleIn"]


def put_tags(s: Session, g: AutoScalingGroup, tags: list[dict[str, Any]]) -> None:
    for tag in tags:
        key = tag.get("Key")
        if not key or len(key) > 128 or key.startswith("aws:"):
            raise exc.ValidationError(f"Tag key '{str(key)[:128]}' is not valid: 1-128 "
                                      "characters, not starting with aws:")
        if len(tag.get("Value") or "") > 256:
            raise exc.ValidationError(f"The value of tag {key} is longer than 256 characters")
        row = s.get(GroupTag, (g.arn, key)) or GroupTag(group_arn=g.arn, key=key)
        row.value = tag.get("Value") or ""
        row.propagate_at_launch = bool(tag.get("PropagateAtLaunch"))
        s.add(row)
    held = s.scalar(select(func.count()).select_from(GroupTag).where(GroupTag.group_arn == g.arn))
    if (held or 0) > 50:
        raise exc.LimitExceeded("An Auto Scaling group has at most 50 tags")


@action("autoscaling", "CreateAutoScalingGroup")
def create_auto_scaling_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _refuse_unoffered(p)
    if not p.get("LaunchTemplate"):
        raise exc.ValidationError("Valid requests must contain either LaunchTemplate, "
                                  "LaunchConfigurationName, InstanceId or MixedInstancesPolicy "
                                  "parameter.")
    name = p["AutoScalingGroupName"]
    if not 1 <= len(name) <= 255:
        raise exc.ValidationError("AutoScalingGroupName must be 1 to 255 characters")
    desired = p.get("DesiredCapacity", p["MinSize"])
    _check_sizes(p["MinSize"], p["MaxSize"], desired)
    with ctx.cloud.store.write() as s:
        if s.scalar(select(AutoScalingGroup.arn).where(
                AutoScalingGroup.account_id == ctx.account_id, AutoScalingGroup.name == name)):
            raise exc.AlreadyExists(f"AutoScalingGroup by this name already exists - A group "
                                    f"with the name {name} already exists")
        held = s.scalar(select(func.count()).select_from(AutoScalingGroup).where(
            AutoScalingGroup.account_id == ctx.account_id)) or 0
        if held >= MAX_GROUPS:
            raise exc.LimitExceeded(f"You have reached your quota of {MAX_GROUPS} Auto "
                                    "Scaling groups")
        template_id, version = template_ref(s, ctx, p["LaunchTemplate"])
        subnets = _subnets(s, ctx, p)
        vpc_id = s.get(models.Subnet, subnets[0]).vpc_id
        g = AutoScalingGroup(
            arn=res.group_arn(ctx.region, ctx.account_id, name), account_id=ctx.account_id,
            name=name, launch_template_id=template_id, launch_template_version=version,
            min_size=p["MinSize"], max_size=p["MaxSize"], desired_capacity=0,
            subnet_ids=subnets,
            target_group_arns=_target_groups(s, ctx, p.get("TargetGroupARNs") or [], vpc_id),
            health_check_type="EC2", health_check_grace_period=0, default_cooldown=300,
            termination_policies=["Default"], protect_new_instances=False,
            suspended_processes=[], capacity_cause="", launch_failures=0)
        _settings(g, p)
        res.set_desired(g, desired, "a user request created an AutoScalingGroup")
        s.add(g)
        s.flush()
        put_tags(s, g, p.get("Tags") or [])
    return {}


@action("autoscaling", "UpdateAutoScalingGroup")
def update_auto_scaling_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _refuse_unoffered(p)
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        if g.status:
            raise exc.ScalingActivityInProgress("The group is being deleted")
        if p.get("LaunchTemplate"):
            g.launch_template_id, g.launch_template_version = template_ref(s, ctx, p["LaunchTemplate"])
        if p.get("VPCZoneIdentifier") or p.get("AvailabilityZones"):
            subnets = _subnets(s, ctx, p)
            vpc_id = s.get(models.Subnet, subnets[0]).vpc_id
            if vpc_id != s.get(models.Subnet, g.subnet_ids[0]).vpc_id:
                raise exc.ValidationError("The group's subnets cannot move to another VPC")
            g.subnet_ids = subnets
        min_size = p.get("MinSize", g.min_size)
        max_size = p.get("MaxSize", g.max_size)
        desired = p.get("DesiredCapacity")
        if desired is None:  # as AWS: new bounds pull the desired capacity inside them
            desired = max(min_size, min(max_size, g.desired_capacity))
        _check_sizes(min_size, max_size, desired)
        g.min_size, g.max_size = min_size, max_size
        _settings(g, p)
        res.set_desired(g, desired, "a user request update of AutoScalingGroup constraints "
                        f"to min: {min_size}, max: {max_size}, desired: {desired}")
    return {}


def _matches(s: Session, g: AutoScalingGroup, filters: list[dict[str, Any]]) -> bool:
    tags = {t.key: t.value for t in s.scalars(select(GroupTag).where(GroupTag.group_arn == g.arn))}
    for f in filters:
        values = f.get("Values") or []
        name = f.get("Name") or ""
        if name.startswith("tag:"):
            if tags.get(name[4:]) not in values:
                return False
        elif name == "tag-key":
            if not set(values) & set(tags):
                return False
        elif name == "tag-value":
            if not set(values) & set(tags.values()):
                return False
        else:
            raise exc.ValidationError(f"Filter name {name[:64]} is not valid: use tag:<key>, "
                                      "tag-key or tag-value")
    return True


@action("autoscaling", "DescribeAutoScalingGroups")
def describe_auto_scaling_groups(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names = p.get("AutoScalingGroupNames") or []
    with ctx.cloud.store.read() as s:
        query = select(AutoScalingGroup).where(AutoScalingGroup.account_id == ctx.account_id)
        if names:
            query = query.where(AutoScalingGroup.name.in_(names))
        rows = [g for g in s.scalars(query.order_by(AutoScalingGroup.name))
                if _matches(s, g, p.get("Filters") or [])]
        chunk, token = res.page(rows, p.get("MaxRecords"), p.get("NextToken"))
        out: dict[str, Any] = {"AutoScalingGroups": [res.group_view(s, g) for g in chunk]}
    if token:
        out["NextToken"] = token
    return out


def remove_group(s: Session, g: AutoScalingGroup) -> None:
    """The group and everything that hangs on it (its policies' alarms too)."""
    for policy in s.scalars(select(ScalingPolicy).where(ScalingPolicy.group_arn == g.arn)):
        if policy.alarm_names:
            s.execute(delete(MetricAlarm).where(MetricAlarm.account_id == g.account_id,
                                                MetricAlarm.name.in_(policy.alarm_names)))
        s.delete(policy)
    for table in (GroupTag, InstanceRefresh, ScheduledAction, LifecycleHook):
        s.execute(delete(table).where(table.group_arn == g.arn))
    s.execute(delete(GroupInstance).where(GroupInstance.group_arn == g.arn))
    s.delete(g)


@action("autoscaling", "DeleteAutoScalingGroup")
def delete_auto_scaling_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        held = res.members(s, g.arn)
        busy = s.scalar(select(ScalingActivity.activity_id).where(
            ScalingActivity.group_arn == g.arn, ScalingActivity.status_code.in_(
                ("Pending", "InProgress", "PreInService"))))
        if not p.get("ForceDelete"):
            if held:
                raise exc.ResourceInUse("You cannot delete an AutoScalingGroup while there "
                                        "are instances or pending Spot instance request(s) "
                                        "still in the group.")
            if busy:
                raise exc.ScalingActivityInProgress("You cannot delete an AutoScalingGroup "
                                                    "while there are scaling activities in "
                                                    "progress for that group.")
        if not held and not busy:
            remove_group(s, g)
            return {}
        # The controller terminates what is left, then removes the group.
        g.status = "Delete in progress"
        g.min_size = g.max_size = 0
        res.set_desired(g, 0, "a user request deleted the AutoScalingGroup")
    return {}


@action("autoscaling", "SetDesiredCapacity")
def set_desired_capacity(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    desired = p["DesiredCapacity"]
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        if g.status:
            raise exc.ScalingActivityInProgress("The group is being deleted")
        if desired > g.max_size:
            raise exc.ValidationError(f"New SetDesiredCapacity value {desired} is above max "
                                      f"value {g.max_size} for the AutoScalingGroup.")
        if desired < g.min_size:
            raise exc.ValidationError(f"New SetDesiredCapacity value {desired} is below min "
                                      f"value {g.min_size} for the AutoScalingGroup.")
        now = utcnow()
        if p.get("HonorCooldown") and g.cooldown_until and g.cooldown_until > now:
            left = int((g.cooldown_until - now).total_seconds()) + 1
            raise exc.ScalingActivityInProgress(
                f"Scaling activity is in progress or the group is in its cooldown period "
                f"({left} s left) and HonorCooldown was asked.")
        res.set_desired(g, desired, "a user request explicitly set group desired capacity")
        if p.get("HonorCooldown"):
            g.cooldown_until = now + dt.timedelta(seconds=g.default_cooldown)
    return {}
