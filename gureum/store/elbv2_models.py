"""Elastic Load Balancing (v2) state: load balancers, target groups and their targets,
listeners and rules, and tags keyed by ARN.

A load balancer is a managed appliance with its own network interface, as on AWS: a slot
(naming its veth), a private address in one of its subnets, a public address when it is
internet-facing, and its own security groups.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow

ARN = String(512)


class LoadBalancer(Base):
    __tablename__ = "load_balancers"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    lb_id: Mapped[str] = mapped_column(String(32), unique=True)  # names its host objects
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))  # application | network
    scheme: Mapped[str] = mapped_column(String(16))  # internet-facing | internal
    vpc_id: Mapped[str] = mapped_column(String(32), index=True)
    subnet_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    security_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Its network interface: in the first of its subnets.
    subnet_id: Mapped[str] = mapped_column(String(32))
    slot: Mapped[int] = mapped_column(Integer)
    private_ip: Mapped[str] = mapped_column(String(15))
    public_ip: Mapped[str | None] = mapped_column(String(15), nullable=True)
    dns_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="provisioning")
    state_reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class TargetGroup(Base):
    __tablename__ = "target_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(8))  # HTTP | HTTPS | TCP
    port: Mapped[int] = mapped_column(Integer)
    vpc_id: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str] = mapped_column(String(16), default="instance")
    # protocol, port ("traffic-port" or a number), path, interval, timeout, healthy,
    # unhealthy, matcher: AWS's names, lower-cased.
    health_check: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Target(Base):
    __tablename__ = "targets"
    target_group_arn: Mapped[str] = mapped_column(ForeignKey("target_groups.arn"),
                                                  primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Set on deregistration: the target drains until then, and is deleted after.
    draining_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # What the data plane last observed (the load balancer controller writes it):
    # initial | healthy | unhealthy, and AWS's reason code when not healthy.
    health: Mapped[str] = mapped_column(String(16), default="initial")
    health_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Listener(Base):
    __tablename__ = "listeners"
    __table_args__ = (UniqueConstraint("load_balancer_arn", "port"),)
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    load_balancer_arn: Mapped[str] = mapped_column(ForeignKey("load_balancers.arn"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    protocol: Mapped[str] = mapped_column(String(8))
    port: Mapped[int] = mapped_column(Integer)
    default_actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    certificates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ssl_policy: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ListenerRule(Base):
    __tablename__ = "listener_rules"
    arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    listener_arn: Mapped[str] = mapped_column(ForeignKey("listeners.arn"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    priority: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Elbv2Tag(Base):
    __tablename__ = "elbv2_tags"
    resource_arn: Mapped[str] = mapped_column(ARN, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
