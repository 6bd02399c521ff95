"""EBS: volumes (root disks too) and snapshots. Images are `models.Image`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow


class Volume(Base):
    """`state` is what DescribeVolumes says and what the volumes controller works toward:
    creating -> available <-> in-use -> deleting (row removed once the file is gone).
    An attachment has its own state: attaching -> attached -> detaching -> (none)."""

    __tablename__ = "volumes"
    volume_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    availability_zone: Mapped[str] = mapped_column(String(32))
    size_gib: Mapped[int] = mapped_column(Integer)
    volume_type: Mapped[str] = mapped_column(String(16), default="gp3")
    iops: Mapped[int | None] = mapped_column(Integer, nullable=True)
    throughput: Mapped[int | None] = mapped_column(Integer, nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The root disk of an instance: made with it, its image under it.
    is_root: Mapped[bool] = mapped_column(default=False)
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attach_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attach_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(default=False)
    force_detach: Mapped[bool] = mapped_column(default=False)
    # ModifyVolume: the latest modification (DescribeVolumesModifications).
    modification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The host holding its file (empty: the control host). An attached volume is always
    # on its instance's host: attaching moves it there (controllers/ebs.py).
    host_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Snapshot(Base):
    """pending -> completed (the file is a point-in-time reflinked copy) | error."""

    __tablename__ = "snapshots"
    snapshot_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    volume_id: Mapped[str] = mapped_column(String(32))
    volume_size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # What the snapshot is a copy of: a volume (taken with others in `batch`) or, for
    # CopySnapshot, another snapshot.
    source_snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    batch: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # A root disk's snapshot holds only the changes over its image: the image it needs
    # (agent/custom_images.py merges them).
    parent_image_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # createVolumePermission: account ids, "all" for everyone in the cloud.
    shared_with: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The host holding its file (empty: the control host); moved where it is needed.
    host_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
