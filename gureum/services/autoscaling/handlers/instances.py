"""A group's instances: DescribeAutoScalingInstances, TerminateInstanceInAutoScalingGroup,
Attach/DetachInstances, SetInstanceHealth, SetInstanceProtection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import resources as res
from gureum.store import models
from gureum.store.autoscaling_models import AutoScalingGroup, GroupInstance
from gureum.store.models import utcnow


def _member(s: Session, ctx: RequestContext, instance_id: str) -> tuple[AutoScalingGroup, GroupInstance]:
    m = s.get(GroupInstance, instance_id)
    g = s.get(AutoScalingGroup, m.group_arn) if m is not None else None
    if m is None or g is None or g.account_id != ctx.account_id:
        raise exc.ValidationError(f"Instance Id not found - No managed instance found for "
                                  f"instance ID: {instance_id[:32]}")
    return g, m


@action("autoscaling", "DescribeAutoScalingInstances")
def describe_auto_scaling_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        query = select(GroupInstance, AutoScalingGroup).join(
            AutoScalingGroup, AutoScalingGroup.arn == GroupInstance.group_arn).where(
            AutoScalingGroup.account_id == ctx.account_id)
        if p.get("InstanceIds"):
            query = query.where(GroupInstance.instance_id.in_(p["InstanceIds"]))
        rows = list(s.execute(query.order_by(GroupInstance.instance_id)).all())
        chunk, token = res.page(rows, p.get("MaxRecords"), p.get("NextToken"), hi=50)
        types = {i.instance_id: i.instance_type for i in s.scalars(select(models.Instance).where(
            models.Instance.instance_id.in_([m.instance_id for m, _ in chunk])))}
        out: dict[str, Any] = {"AutoScalingInstances": [
            {**res.instance_view(m, types.get(m.instance_id, ""), res.template_spec(s, g),
                                 res.template_names(s, [m])),
             "AutoScalingGroupName": g.name, "HealthStatus": m.health_status.upper()}
            for m, g in chunk]}
    if token:
        out["NextToken"] = token
    return out


@action("autoscaling", "TerminateInstanceInAutoScalingGroup")
def terminate_instance_in_auto_scaling_group(ctx: RequestContext,
                                              p: dict[str, Any]) -> dict[str, Any]:
    wanted = [p["InstanceId"]] if p.get("InstanceId") else list(p.get("InstanceIds") or [])
    if not wanted:
        raise exc.ValidationError("InstanceId is required")
    decrement = p["ShouldDecrementDesiredCapacity"]
    views = []
    with ctx.cloud.store.write() as s:
        for instance_id in wanted:
            g, m = _member(s, ctx, instance_id)
            if m.lifecycle_state.startswith("Terminating"):
                continue
            if m.lifecycle_state not in res.COUNTED:
                raise exc.ValidationError(f"The instance {instance_id} is {m.lifecycle_state} "
                                          "and cannot be terminated through the group now.")
            cause = (f"At {res.stamp()} instance {instance_id} was taken out of service in "
                     "response to a user request")
            if decrement:
                if g.desired_capacity - 1 < g.min_size:
                    raise exc.ValidationError(
                        f"Currently, desiredSize equals minSize ({g.min_size}). Terminating "
                        "instance without replacement will violate group's min size "
                        "constraint. Either set shouldDecrementDesiredCapacity flag to false "
                        "or lower group's min size.")
                cause += (f", shrinking the capacity from {g.desired_capacity} to "
                          f"{g.desired_capacity - 1}")
                g.desired_capacity -= 1
            views.append(res.activity_view(res.retire(s, g, m, cause + ".")))
    return {"Activity": views[0], "Activities": views} if views else {"Activities": []}


@action("autoscaling", "AttachInstances")
def attach_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    wanted = list(dict.fromkeys(p.get("InstanceIds") or []))
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        vpc = s.get(models.Subnet, g.subnet_ids[0]).vpc_id
        counted = sum(1 for m in res.members(s, g.arn) if m.lifecycle_state in res.COUNTED)
        if counted + len(wanted) > g.max_size or g.desired_capacity + len(wanted) > g.max_size:
            raise exc.ValidationError(f"Attaching {len(wanted)} instance(s) to the group "
                                      f"would exceed its max size ({g.max_size}).")
        for instance_id in wanted:
            inst = s.get(models.Instance, instance_id)
            if inst is None or inst.account_id != ctx.account_id or inst.state != "running":
                raise exc.ValidationError(f"Instance {instance_id[:32]} is not in a running "
                                          "state or does not exist.")
            if s.get(GroupInstance, instance_id) is not None:
                raise exc.ValidationError(f"The instance {instance_id} is already part of an "
                                          "Auto Scaling group.")
            if inst.vpc_id != vpc:
                raise exc.ValidationError(f"The instance {instance_id} is not in the VPC of "
                                          f"the group's subnets ({vpc}).")
            g.desired_capacity += 1
            s.add(GroupInstance(instance_id=instance_id, group_arn=g.arn,
                                lifecycle_state="Pending", health_status="Healthy",
                                protected=g.protect_new_instances, launch_template_version="",
                                availability_zone=inst.availability_zone,
                                subnet_id=inst.subnet_id, launched_at=utcnow()))
            res.finish(res.activity(
                s, g, "attach", f"Attaching an existing EC2 instance: {instance_id}",
                f"At {res.stamp()} an instance was added in response to user request. Keeping "
                f"the capacity at the new desired capacity {g.desired_capacity}.",
                instance_id=instance_id, subnet_id=inst.subnet_id), "Successful")
    return {}


@action("autoscaling", "DetachInstances")
def detach_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    views = []
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        for instance_id in dict.fromkeys(p.get("InstanceIds") or []):
            m = s.get(GroupInstance, instance_id)
            if m is None or m.group_arn != g.arn:
                raise exc.ValidationError(f"The instance {instance_id[:32]} is not part of "
                                          f"Auto Scaling group {g.name}.")
            if m.lifecycle_state != "InService":
                raise exc.ValidationError(f"The instance {instance_id} is not in InService "
                                          f"({m.lifecycle_state}) and cannot be detached.")
            cause = f"At {res.stamp()} instance {instance_id} was detached in response to a user request"
            if p["ShouldDecrementDesiredCapacity"]:
                if g.desired_capacity - 1 < g.min_size:
                    raise exc.ValidationError(
                        f"Detaching {instance_id} would take the group below its min size "
                        f"({g.min_size}) unless ShouldDecrementDesiredCapacity is false.")
                cause += (f", shrinking the capacity from {g.desired_capacity} to "
                          f"{g.desired_capacity - 1}")
                g.desired_capacity -= 1
            m.lifecycle_state, m.leaving_cause = "Detaching", cause + "."
            views.append(res.activity_view(res.activity(
                s, g, "detach", f"Detaching EC2 instance: {instance_id}", cause + ".",
                instance_id=instance_id, subnet_id=m.subnet_id, status_code="InProgress")))
    return {"Activities": views}


@action("autoscaling", "SetInstanceHealth")
def set_instance_health(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    status = p["HealthStatus"]
    if status not in ("Healthy", "Unhealthy"):
        raise exc.ValidationError("HealthStatus must be Healthy or Unhealthy")
    with ctx.cloud.store.write() as s:
        g, m = _member(s, ctx, p["InstanceId"])
        if status == "Unhealthy" and p.get("ShouldRespectGracePeriod", True) and \
                (utcnow() - m.launched_at).total_seconds() < g.health_check_grace_period:
            return {}  # as AWS: ignored within the grace period when asked to respect it
        m.health_status = status
        if status == "Unhealthy":
            m.leaving_cause = (f"At {res.stamp()} an instance was taken out of service in "
                               "response to a user health-check.")
    return {}


@action("autoscaling", "SetInstanceProtection")
def set_instance_protection(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        for instance_id in p["InstanceIds"]:
            m = s.get(GroupInstance, instance_id)
            if m is None or m.group_arn != g.arn:
                raise exc.ValidationError(f"The instance {instance_id[:32]} is not part of "
                                          f"Auto Scaling group {g.name}.")
            m.protected = p["ProtectedFromScaleIn"]
    return {}
