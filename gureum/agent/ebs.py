"""The agent's EBS operations (a part of `HostAgent`): volumes and snapshots in the
volume store, attachments through the instance driver, image roots from snapshots."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from gureum.agent import custom_images
from gureum.agent.contract import SnapshotRequest, StoredChunk, VolumeAttachment
from gureum.agent.drivers.base import InstanceDriver
from gureum.agent.volume_store import VolumeStore
from gureum.config import Config
from gureum.crashpoints import crashpoint
from gureum.errors import HostError

STORED_NAME = re.compile(r"(vol|snap)-[0-9a-f]{8,17}")


class EbsOperations:
    config: Config
    store: VolumeStore
    driver: InstanceDriver

    def create_volume(self, volume_id: str, size_gib: int, snapshot_id: str | None) -> None:
        source = self.store.snapshot(snapshot_id) if snapshot_id else None
        if source is not None and not source.exists():
            raise FileNotFoundError(f"snapshot {snapshot_id} has no data on this host")
        self.store.create(volume_id, size_gib, source)
        crashpoint("ebs.volume_created")

    def delete_volume(self, volume_id: str) -> None:
        self.store.delete(volume_id)

    def grow_volume(self, volume_id: str, size_gib: int) -> None:
        self.store.grow(volume_id, size_gib)

    def attach_volume(self, instance_id: str, slot: int, attachment: VolumeAttachment) -> None:
        self.driver.attach_volume(instance_id, slot, attachment.volume_id, attachment.device,
                                  attachment.io)

    def detach_volume(self, instance_id: str, attachment: VolumeAttachment, force: bool) -> None:
        self.driver.detach_volume(instance_id, attachment.volume_id, attachment.device, force)

    def snapshot_volumes(self, requests: list[SnapshotRequest]) -> None:
        self.store.take_snapshots([(self._volume_file(r.volume_id), r.snapshot_id)
                                   for r in requests])
        crashpoint("ebs.snapshot_taken")

    def _volume_file(self, volume_id: str) -> Path:
        """A volume's file, or a snapshot's (CopySnapshot copies one)."""
        path = (self.store.snapshot(volume_id) if volume_id.startswith("snap-")
                else self.store.volume(volume_id))
        if not path.exists():
            raise FileNotFoundError(f"volume {volume_id} has no data on this host")
        return path

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.store.delete(snapshot_id)

    def _stored(self, name: str) -> Path:
        if not STORED_NAME.fullmatch(name):
            raise HostError(f"not a volume or snapshot id: {name[:40]!r}")
        return self.store.ensure() / f"{name}.img"

    def read_stored(self, name: str, offset: int, length: int) -> StoredChunk:
        try:
            fd = os.open(self._stored(name), os.O_RDONLY)
        except FileNotFoundError:
            raise HostError(f"{name} has no data on this host") from None
        try:
            size = os.fstat(fd).st_size
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as err:
                if err.errno != errno.ENXIO:  # ENXIO: no data after offset
                    raise
                return StoredChunk(b"", size, size, True)
            return StoredChunk(os.pread(fd, min(length, size - start), start), start, size,
                               False)
        finally:
            os.close(fd)

    def write_stored(self, name: str, chunk: StoredChunk, first: bool) -> None:
        path = self._stored(name)
        part = path.with_name(path.name + ".part")
        with open(part, "wb" if first else "r+b") as f:
            if first:
                f.truncate(chunk.size)
            if chunk.data:
                os.pwrite(f.fileno(), chunk.data, chunk.offset)
            if chunk.end:
                os.fsync(f.fileno())
        if chunk.end:
            part.rename(path)

    def adopt_root_disk(self, volume_id: str, slot: int) -> None:
        disk = self._stored(volume_id)
        if not disk.exists():
            raise HostError(f"{volume_id} has no data on this host")
        self.driver.adopt_disk(disk, slot)

    def build_image(self, image_id: str, snapshot_id: str, parent_root: str | None) -> str:
        snapshot = self.store.snapshot(snapshot_id)
        if not snapshot.exists():
            raise FileNotFoundError(f"snapshot {snapshot_id} has no data on this host")
        root = custom_images.build(self.config.data_dir, image_id, snapshot,
                                   Path(parent_root) if parent_root else None)
        return str(root)

    def delete_image(self, image_id: str) -> None:
        custom_images.delete(self.config.data_dir, image_id)
