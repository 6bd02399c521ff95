"""Hosts under one control plane, their join token, placement groups.

A host row is what the control plane knows of one machine running instances: its
capacity, zone and state, and how to reach its agent (the control host's own agent is
in-process: no URL). Instances name their host (`instances.host_id`)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow

HOST_STATES = ("active", "draining", "lost")


class Host(Base):
    __tablename__ = "hosts"
    host_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(32), index=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    disk_gib: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="active")
    # The host whose agent runs with the control plane (no URL, no secret).
    is_control: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    agent_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # SHA-256 of the certificate the cloud CA issued the agent at join: the control plane
    # talks only to an agent presenting exactly that certificate.
    cert_fingerprint: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Given to the agent at join: it proves the control plane to the agent (every call)
    # and the agent to the control plane (every heartbeat).
    agent_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    last_heartbeat: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class JoinToken(Base):
    """The cloud's join token, hashed (the clear token lives in the control host's data
    directory, readable by root only, so that `gureum host token` can print it again)."""

    __tablename__ = "host_join_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class PlacementGroup(Base):
    __tablename__ = "placement_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    group_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    strategy: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="available")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
