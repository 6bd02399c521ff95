"""Data volumes inside a container instance.

An instance's root has no privilege over the host's block devices, so it cannot mount a
volume itself as an EC2 instance would (mkfs + mount /dev/xvdf). The host mounts for it:

  <instance>/vols/<volume id>   the volume's filesystem, loop-mounted raw (host only, 0700)
  <instance>/mnt/<device name>  that mount, idmapped to the instance's uid range
  <instance>/mnt                a shared mount, bound into the instance at /mnt as a slave

so a volume attached at /dev/sdf appears inside at /mnt/sdf, also while the instance runs
(mount propagation), and disappears when it is detached. Files keep the instance's own
owners (0 = its root) on the volume, so the data moves between instances unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from gureum.agent import hostcmd, idmap, storage, sysmount
from gureum.agent.volume_store import VolumeStore, mount_volume
from gureum.errors import HostCommandFailed, VolumeBusy, VolumeHeld


def device_name(device: str) -> str:
    """/dev/sdf -> sdf, the directory under /mnt."""
    return device.rsplit("/", 1)[-1]


class VolumeMounts:
    def __init__(self, store: VolumeStore) -> None:
        self.store = store

    @staticmethod
    def share(instance_dir: Path) -> Path:
        return instance_dir / "mnt"

    def ensure_share(self, instance_dir: Path, owner: int) -> Path:
        """The shared mount the instance's /mnt is a slave of (made before the instance
        starts: its /mnt bind must see a shared source)."""
        share = self.share(instance_dir)
        share.mkdir(exist_ok=True)
        os.chown(share, owner, owner)
        if not storage.is_mounted(share):
            sysmount.bind_shared(share)
        return share

    def attach(self, instance_dir: Path, owner: int, volume_id: str, device: str) -> None:
        """Idempotent. The filesystem grows to the volume's size on the way (a volume made
        larger than its snapshot, or modified while it could not grow online)."""
        raw = instance_dir / "vols" / volume_id
        view = self.share(instance_dir) / device_name(device)
        self.ensure_share(instance_dir, owner)
        if not storage.is_mounted(raw):
            path = self.store.volume(volume_id)
            if str(path) in self.store.loop_devices():
                raise VolumeHeld(f"{volume_id} is still in use by a previous attachment")
            raw.parent.mkdir(mode=0o700, exist_ok=True)
            raw.mkdir(exist_ok=True)
            mount_volume(path, raw)
        if not storage.is_mounted(view):
            view.mkdir(exist_ok=True)
            os.chown(view, owner, owner)
            idmap.mount_idmapped(str(raw), str(view), owner, readonly=False)

    def detach(self, instance_dir: Path, volume_id: str, device: str, force: bool) -> None:
        """Idempotent. Data is flushed by the unmount. In use inside: VolumeBusy, unless
        `force`, which detaches lazily (the volume is then held until its last user lets
        go: `VolumeHeld` keeps it from attaching anywhere meanwhile)."""
        view = self.share(instance_dir) / device_name(device)
        raw = instance_dir / "vols" / volume_id
        for point in (view, raw):
            if storage.is_mounted(point):
                _unmount(point, force)
            with contextlib.suppress(FileNotFoundError, OSError):
                point.rmdir()

    def release(self, instance_dir: Path) -> None:
        """Everything mounted for volumes goes (stop, terminate): the views, the shared
        /mnt source, the raw mounts. The volumes stay attached in the control plane."""
        share = self.share(instance_dir)
        mounted = storage.mountpoints()
        for view in sorted(m for m in mounted if m.startswith(f"{share}/")):
            _unmount(Path(view), force=True)
        if str(share) in mounted:
            _unmount(share, force=True)
        for raw in sorted(m for m in mounted if m.startswith(f"{instance_dir}/vols/")):
            _unmount(Path(raw), force=True)


def _unmount(point: Path, force: bool) -> None:
    try:
        hostcmd.run(["umount", str(point)])
    except HostCommandFailed as err:
        if "busy" not in err.stderr.lower():
            raise
        if not force:
            raise VolumeBusy(f"{point}: {os.strerror(errno.EBUSY)}") from None
        hostcmd.run(["umount", "-l", str(point)])
