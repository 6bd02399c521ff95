"""EC2 Auto Scaling state: groups, the instances they own, scaling activities (each
launch and termination, with the client token that makes a launch happen once even
across a crash), scaling policies and tags.

The group row is desired state; the Auto Scaling controller makes instances follow it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow

ARN = String(1600)


class AutoScalingGroup(Base):
    __tablename__ = "autoscaling_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    launch_template_id: Mapped[str] = mapped_column(String(32))
    launch_template_version: Mapped[str] = mapped_column(String(32), default="$Default")
    min_size: Mapped[int] = mapped_column(Integer)
    max_size: Mapped[int] = mapped_column(Integer)
    desired_capacity: Mapped[int] = mapped_column(Integer)
    subnet_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_group_arns: Mapped[list[str]] = mapped_column(JSON, default=list)
    health_check_type: Mapped[str] = mapped_column(String(8), default="EC2")
    health_check_grace_period: Mapped[int] = mapped_column(Integer, default=0)
    default_cooldown: Mapped[int] = mapped_column(Integer, default=300)
    default_instance_warmup: Mapped[int | None] = mapped_column(Integer, nullable=True)
    termination_policies: Mapped[list[str]] = mapped_column(JSON, default=list)
    protect_new_instances: Mapped[bool] = mapped_column(Boolean, default=False)
    suspended_processes: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)  # Delete in progress
    # Why the desired capacity last changed, in AWS's words: the start of each cause.
    capacity_cause: Mapped[str] = mapped_column(Text, default="")
    # When a simple-scaling cooldown ends (SetDesiredCapacity HonorCooldown, simple policies).
    cooldown_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Launch failures back off: no launch before this.
    next_launch_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    launch_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupInstance(Base):
    """An instance a group owns, with Auto Scaling's view of it."""

    __tablename__ = "autoscaling_instances"
    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_arn: Mapped[str] = mapped_column(ForeignKey("autoscaling_groups.arn"), index=True)
    # Pending | InService | Terminating | Detaching | Standby
    lifecycle_state: Mapped[str] = mapped_column(String(32), default="Pending")
    health_status: Mapped[str] = mapped_column(String(16), default="Healthy")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    launch_template_version: Mapped[str] = mapped_column(String(32))
    # Which template the version is of (a refresh may change templates).
    launch_template_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(32))
    subnet_id: Mapped[str] = mapped_column(String(32))
    launched_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    in_service_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Why it leaves (the cause of its termination activity), once it does.
    leaving_cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    decrement: Mapped[bool] = mapped_column(Boolean, default=False)
    # A lifecycle action it waits on (Pending:Wait, Terminating:Wait): which hook, the
    # token CompleteLifecycleAction names, when the hook's default result applies, and
    # the result once given.
    action_hook: Mapped[str | None] = mapped_column(String(255), nullable=True)
    action_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    action_deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    action_result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # [target group ARN, target id] pairs it was registered as when it joined: what it
    # leaves, even after its private address went to someone else.
    registered_targets: Mapped[list[list[str]]] = mapped_column(JSON, default=list,
                                                                server_default="[]")


class ScalingActivity(Base):
    __tablename__ = "autoscaling_activities"
    __table_args__ = (Index("ix_autoscaling_activities_open", "group_arn", "kind", "status_code"),
                      Index("ix_autoscaling_activities_instance", "instance_id"))
    activity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    group_name: Mapped[str] = mapped_column(String(255), index=True)
    group_arn: Mapped[str] = mapped_column(ARN)
    kind: Mapped[str] = mapped_column(String(16))  # launch | terminate | capacity
    description: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(Text)
    # Pending | InProgress | Successful | Failed | Cancelled
    status_code: Mapped[str] = mapped_column(String(32), default="InProgress")
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnet_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The RunInstances ClientToken of a launch: a crash between asking and recording
    # asks again with the same token and gets the same instance.
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    launch_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    launch_template_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ScalingPolicy(Base):
    __tablename__ = "autoscaling_policies"
    __table_args__ = (UniqueConstraint("group_arn", "name"),)
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    group_arn: Mapped[str] = mapped_column(ForeignKey("autoscaling_groups.arn"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    policy_type: Mapped[str] = mapped_column(String(32))  # SimpleScaling | StepScaling | TargetTrackingScaling
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # PutScalingPolicy's members as given (botocore names), minus the group and name.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Target tracking: the alarms it made (AlarmHigh, AlarmLow), by name.
    alarm_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_scale_out_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_scale_in_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class GroupTag(Base):
    __tablename__ = "autoscaling_tags"
    group_arn: Mapped[str] = mapped_column(ForeignKey("autoscaling_groups.arn"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    propagate_at_launch: Mapped[bool] = mapped_column(Boolean, default=False)


class InstanceRefresh(Base):
    """A rolling replacement of a group's instances (StartInstanceRefresh), and its
    rollback: the launch template the group had before, to go back to."""

    __tablename__ = "autoscaling_instance_refreshes"
    refresh_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    group_arn: Mapped[str] = mapped_column(ForeignKey("autoscaling_groups.arn"), index=True)
    group_name: Mapped[str] = mapped_column(String(255))
    # Pending | InProgress | Successful | Failed | Cancelling | Cancelled |
    # RollbackInProgress | RollbackSuccessful | RollbackFailed
    status: Mapped[str] = mapped_column(String(32), default="Pending")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    desired_configuration: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    previous_template_id: Mapped[str] = mapped_column(String(32))
    previous_template_version: Mapped[str] = mapped_column(String(32))
    instances_to_update: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    rollback_started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # MaxHealthyPercentage above 100: instances launched beyond the desired capacity for
    # the refresh (new ones first, old ones retired once they serve).
    surge: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ScheduledAction(Base):
    __tablename__ = "autoscaling_scheduled_actions"
    __table_args__ = (UniqueConstraint("group_arn", "name"),)
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    group_arn: Mapped[str] = mapped_column(ForeignKey("autoscaling_groups.arn"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    end_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    recurrence: Mapped[str | None] = mapped_column(String(255), nullable=True)
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    min_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    desired_capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # When it runs next (UTC); None once a one-time action has run.
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class LifecycleHook(Base):
    __tablename__ = "autoscaling_lifecycle_hooks"
    group_arn: Mapped[str] = mapped_column(ForeignKey("autoscaling_groups.arn"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    transition: Mapped[str] = mapped_column(String(64))  # autoscaling:EC2_INSTANCE_LAUNCHING | ..._TERMINATING
    heartbeat_timeout: Mapped[int] = mapped_column(Integer, default=3600)
    default_result: Mapped[str] = mapped_column(String(16), default="ABANDON")
    notification_metadata: Mapped[str | None] = mapped_column(Text, nullable=True)
    notification_target_arn: Mapped[str | None] = mapped_column(String(1600), nullable=True)
    role_arn: Mapped[str | None] = mapped_column(String(1600), nullable=True)
