"""The EBS controller: makes the host's volumes, attachments, snapshots and image roots
match the store. Every step is an idempotent agent call followed by one guarded write,
so a crash between the two only repeats the call.

Work list: volumes creating / deleting / attaching / detaching / being modified,
snapshots pending / deleting, images pending / deregistered. One failing item never
holds up the others; a volume in use inside its instance stays `detaching` (as on EC2)
until it is let go or the detach is forced.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from gureum.agent.contract import SnapshotRequest, VolumeAttachment
from gureum.controllers.loop import ResyncLoop
from gureum.crashpoints import crashpoint
from gureum.errors import AgentUnavailable, HostError, VolumeBusy, VolumeHeld
from gureum.hosts import moves
from gureum.services.ec2 import volume_io
from gureum.services.ec2.handlers import common
from gureum.store import models
from gureum.store.ebs_models import Snapshot, Volume
from gureum.store.models import utcnow

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.ebs")
GONE = ("shutting-down", "terminated")


class EbsController(ResyncLoop):
    name = "ebs"
    resync_seconds = 2.0

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud

    @property
    def agent(self) -> Any:
        return self.cloud.agent

    def on(self, host_id: str | None) -> Any:
        """The agent of the host holding a volume's or snapshot's file."""
        return self.cloud.agent_for(host_id)

    def _move_snapshot(self, snapshot_id: str, to_host: str | None) -> None:
        """A snapshot's file goes where it is needed (snapshots are regional on AWS: where
        gureum keeps one is its own business)."""
        with self.cloud.store.read() as s:
            snap = s.get(Snapshot, snapshot_id)
            at = snap.host_id if snap is not None else None
        if snap is None or self.cloud.agents.key(at) == self.cloud.agents.key(to_host):
            return
        moves.move_stored(self.cloud, snapshot_id, at, to_host)
        with self.cloud.store.write() as s:
            row = s.get(Snapshot, snapshot_id)
            if row is not None:
                row.host_id = to_host
        moves.drop_source(self.cloud, snapshot_id, at)

    def sync(self) -> None:
        with self.cloud.store.read() as s:
            volumes = list(s.scalars(select(Volume).where(or_(
                Volume.state.in_(("creating", "deleting")),
                Volume.attach_state.in_(("attaching", "detaching")),
                Volume.modification.is_not(None)))))
            states = {i.instance_id: (i.state, i.slot, i.host_id) for i in s.scalars(select(
                models.Instance).where(models.Instance.instance_id.in_(
                    {v.instance_id for v in volumes if v.instance_id})))}
            snapshots = list(s.scalars(select(Snapshot).where(
                Snapshot.state.in_(("pending", "deleting")))))
            images = list(s.scalars(select(models.Image).where(
                models.Image.state.in_(("pending", "deregistered")))))
        lost = self.cloud.agents.lost
        for volume in volumes:
            # A lost host's volumes wait for it (its calls would only time out).
            if lost(volume.host_id) or lost(states.get(volume.instance_id or "", ("",) * 3)[2]):
                continue
            self._guarded(volume.volume_id, lambda v=volume: self._volume(v, states))
        batches: dict[str, list[Snapshot]] = defaultdict(list)
        for snap in snapshots:
            if lost(snap.host_id):
                continue
            if snap.state == "deleting":
                self._guarded(snap.snapshot_id, lambda sn=snap: self._delete_snapshot(sn))
            else:
                batches[snap.batch or snap.snapshot_id].append(snap)
        for batch in batches.values():
            self._guarded(batch[0].snapshot_id, lambda b=batch: self._take(b))
        for image in images:
            self._guarded(image.image_id, lambda i=image: self._image(i))

    def _guarded(self, name: str, step: Callable[[], None]) -> None:
        try:
            step()
        except AgentUnavailable:
            raise
        except (VolumeBusy, VolumeHeld) as err:
            log.info("%s waits: %s", name, err)
        except (HostError, OSError) as err:
            log.warning("%s: %s", name, err)
            self._note_error(name, f"{type(err).__name__}: {err}")

    def _note_error(self, name: str, error: str) -> None:
        model = {"vol": Volume, "snap": Snapshot, "ami": models.Image}[name.split("-")[0]]
        with self.cloud.store.write() as s:
            row = s.get(model, name)
            if row is not None:
                row.last_error = error[:4000]

    # -- volumes ----------------------------------------------------------------------
    def _volume(self, v: Volume, states: dict[str, tuple[str, int, str | None]]) -> None:
        if v.state == "creating":
            if v.snapshot_id:
                self._move_snapshot(v.snapshot_id, v.host_id)
            self.on(v.host_id).create_volume(v.volume_id, v.size_gib, v.snapshot_id)
            self._update(v.volume_id, lambda row: row.state == "creating",
                         state="in-use" if v.instance_id else "available", last_error=None)
            return
        if v.state == "deleting":
            self.on(v.host_id).delete_volume(v.volume_id)
            crashpoint("ebs.volume_deleted_before_record")
            with self.cloud.store.write() as s:
                row = s.get(Volume, v.volume_id)
                if row is not None and row.state == "deleting":
                    common.delete_with_tags(s, row)
            return
        if v.attach_state == "attaching" and v.instance_id:
            state, slot, host_id = states.get(v.instance_id, ("terminated", 0, None))
            keys = self.cloud.agents.key
            if state not in GONE and keys(v.host_id) != keys(host_id):
                # The volume goes to its instance's host first (attaching meanwhile).
                moves.move_stored(self.cloud, v.volume_id, v.host_id, host_id)
                self._update(v.volume_id, lambda row: row.attach_state == "attaching",
                             host_id=host_id)
                moves.drop_source(self.cloud, v.volume_id, v.host_id)
                v.host_id = host_id
            if state == "running":
                self.on(host_id).attach_volume(v.instance_id, slot, VolumeAttachment(
                    v.volume_id, v.device or "",
                    volume_io.of_volume(v, self.cloud.config.ebs_io_scale)))
                crashpoint("ebs.attached_before_record")
            elif state not in ("stopped", *GONE):
                return  # starting or stopping: its next launch or this loop's next pass
            self._update(v.volume_id, lambda row: row.attach_state == "attaching",
                         attach_state="attached", last_error=None)
        if v.attach_state == "detaching" and v.instance_id:
            state, _, host_id = states.get(v.instance_id, ("terminated", 0, None))
            if state == "running":
                self.on(host_id).detach_volume(v.instance_id, VolumeAttachment(
                    v.volume_id, v.device or ""), v.force_detach)
                crashpoint("ebs.detached_before_record")
            elif state not in ("stopped", *GONE):
                return
            self._update(v.volume_id, lambda row: row.attach_state == "detaching",
                         attach_state=None, instance_id=None, device=None, attach_time=None,
                         force_detach=False, state="available", last_error=None)
        modification = v.modification or {}
        if modification.get("ModificationState") == "modifying" and v.state != "creating":
            self.on(v.host_id).grow_volume(v.volume_id, v.size_gib)
            done = {**modification, "ModificationState": "completed", "Progress": 100,
                    "EndTime": utcnow().isoformat()}
            self._update(v.volume_id, lambda row: row.modification == modification,
                         modification=done)

    def _update(self, volume_id: str, still: Callable[[Volume], bool], **values: Any) -> None:
        with self.cloud.store.write() as s:
            row = s.get(Volume, volume_id)
            if row is not None and still(row):
                for key, value in values.items():
                    setattr(row, key, value)

    # -- snapshots --------------------------------------------------------------------
    def _take(self, batch: list[Snapshot]) -> None:
        """Snapshots the API could not take at once (a crash, the agent away)."""
        self.on(batch[0].host_id).snapshot_volumes([SnapshotRequest(
            sn.source_snapshot_id or sn.volume_id, sn.snapshot_id) for sn in batch])
        mark_completed(self.cloud, [sn.snapshot_id for sn in batch])

    def _delete_snapshot(self, snap: Snapshot) -> None:
        self.on(snap.host_id).delete_snapshot(snap.snapshot_id)
        with self.cloud.store.write() as s:
            row = s.get(Snapshot, snap.snapshot_id)
            if row is not None and row.state == "deleting":
                common.delete_with_tags(s, row)

    # -- images -----------------------------------------------------------------------
    def _image(self, image: models.Image) -> None:
        if image.state == "pending":
            self._build(image)
        else:
            self._forget(image)

    def _build(self, image: models.Image) -> None:
        with self.cloud.store.read() as s:
            snap = s.get(Snapshot, image.root_snapshot_id or "")
            parent = s.get(models.Image, snap.parent_image_id) if snap and snap.parent_image_id else None
        if snap is None or snap.state == "error":
            self._set_image(image.image_id, state="failed",
                            last_error=f"its root snapshot {image.root_snapshot_id} failed")
            return
        if snap.state != "completed":
            return
        if snap.parent_image_id and (parent is None or not parent.rootfs):
            self._set_image(image.image_id, state="failed",
                            last_error=f"its parent image {snap.parent_image_id} is gone")
            return
        self._move_snapshot(snap.snapshot_id, None)  # image roots live on the control host
        root = self.agent.build_image(image.image_id, snap.snapshot_id,
                                      parent.rootfs if parent else None)
        crashpoint("ebs.image_built_before_record")
        self._set_image(image.image_id, state="available", rootfs=root, last_error=None)

    def _set_image(self, image_id: str, **values: Any) -> None:
        with self.cloud.store.write() as s:
            row = s.get(models.Image, image_id)
            if row is not None and row.state == "pending":
                for key, value in values.items():
                    setattr(row, key, value)

    def _forget(self, image: models.Image) -> None:
        """A deregistered image's root goes once no instance runs from it and no copy of
        the image shares it; then its row."""
        with self.cloud.store.read() as s:
            running = s.scalar(select(models.Instance.instance_id).where(
                models.Instance.image_id == image.image_id,
                models.Instance.state != "terminated").limit(1))
            if running is not None:
                return
            sharing = s.scalar(select(models.Image.image_id).where(
                models.Image.rootfs == image.rootfs, models.Image.image_id != image.image_id,
                models.Image.rootfs != "").limit(1))
            users = s.scalar(select(models.Instance.instance_id).join(
                models.Image, models.Image.image_id == models.Instance.image_id).where(
                models.Image.rootfs == image.rootfs,
                models.Instance.state != "terminated").limit(1)) if image.rootfs else None
        if image.rootfs and sharing is None and users is None:
            self.agent.delete_image(Path(image.rootfs).parent.name)
        with self.cloud.store.write() as s:
            row = s.get(models.Image, image.image_id)
            if row is not None and row.state == "deregistered":
                common.delete_with_tags(s, row)


def mark_completed(cloud: Cloud, snapshot_ids: list[str]) -> None:
    with cloud.store.write() as s:
        for snapshot_id in snapshot_ids:
            row = s.get(Snapshot, snapshot_id)
            if row is not None and row.state == "pending":
                row.state, row.last_error = "completed", None
