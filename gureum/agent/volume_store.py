"""Where EBS volumes and snapshots live on a host: one XFS filesystem with reflinks, in a
sparse file under the data directory, loop-mounted at `<data>/volumes`.

Why XFS in a file: the host's own filesystem (ext4 here) has no reflinks and the kernel no
device-mapper, so neither thin LVM nor copy-on-write files are available directly. In the
store a snapshot is `cp --reflink` of a volume's file: it takes milliseconds whatever the
size, and shares every unchanged block with its volume and with the other snapshots.

Layout inside the store:
  vol-....img     a volume: a sparse XFS image (root disks: ext4, see storage.py)
  snap-....img    a snapshot: a read-only reflinked copy of a volume at one instant
  pool/           formatted root disks waiting for a launch (agent/disk_pool.py)

A data volume holds an XFS filesystem (it grows online with CAP_SYS_ADMIN alone; ext4
needs CAP_SYS_RESOURCE, which some hosts' root lacks) whose owners are the instance's own ids
(0 = its root): it is mounted raw on the host and shown to an instance through an
idmapped bind (agent/drivers/volume_mounts.py), so the same data moves between instances
whose uid ranges differ.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from gureum.agent import hostcmd, storage
from gureum.errors import HostCommandFailed

log = logging.getLogger("gureum.volumes")

MIB = 1024**2
GIB = 1024**3


class VolumeStore:
    def __init__(self, data_dir: Path, size_gib: int) -> None:
        self.image = data_dir / "volumes.xfs"
        self.root = data_dir / "volumes"
        self.size_gib = size_gib
        self._lock = threading.Lock()
        self._snapshot_lock = threading.Lock()

    # -- the store itself ---------------------------------------------------------------
    def ensure(self) -> Path:
        """Mounted (made on first use). Idempotent and cheap once mounted."""
        if storage.is_mounted(self.root):
            return self.root
        with self._lock:
            if storage.is_mounted(self.root):
                return self.root
            if not self.image.exists():
                staging = self.image.with_name(self.image.name + ".new")
                with open(staging, "wb") as f:
                    f.truncate(self.capped_gib() * GIB)
                try:
                    hostcmd.run(["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(staging)])
                except BaseException:
                    staging.unlink(missing_ok=True)
                    raise
                staging.rename(self.image)
            self.root.mkdir(mode=0o755, exist_ok=True)
            hostcmd.run(["mount", "-o", "loop,nodev,nosuid", str(self.image), str(self.root)])
            storage.direct_io(self.root)
            (self.root / "pool").mkdir(exist_ok=True)
        return self.root

    def capped_gib(self) -> int:
        """The store's size: the configured one, but never more than 90 % of what the
        host's filesystem has free when the store is made. Volumes are sparse and may
        together be larger than the store; what they write cannot be: a full store fails
        its instances' writes (ENOSPC inside), never the host's own disk."""
        fs = os.statvfs(self.image.parent)
        free_gib = int(fs.f_bavail * fs.f_frsize * 0.9 // GIB)
        if free_gib < self.size_gib:
            log.warning("volume store capped at %d GiB (asked %d): the host's free space",
                        free_gib, self.size_gib)
        return max(1, min(self.size_gib, free_gib))

    def release(self) -> None:
        """Unmounted, when nothing on it is in use (files stay in the store's image)."""
        with self._lock:
            if storage.is_mounted(self.root) and not self.busy():
                hostcmd.run(["umount", str(self.root)])

    def busy(self) -> bool:
        """Some volume file of the store is behind a loop device (mounted somewhere)."""
        return bool(self.loop_devices())

    def loop_devices(self) -> dict[str, str]:
        """Backing file -> loop device, for the store's files."""
        out = hostcmd.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], check=False)
        found = {}
        for line in out.splitlines():
            name, _, back = line.strip().partition(" ")
            back = back.strip().removesuffix(" (deleted)")
            if back.startswith(str(self.root) + "/"):
                found[back] = name
        return found

    # -- names ----------------------------------------------------------------------------
    def volume(self, volume_id: str) -> Path:
        return self.ensure() / f"{volume_id}.img"

    def snapshot(self, snapshot_id: str) -> Path:
        return self.ensure() / f"{snapshot_id}.img"

    def pool(self) -> Path:
        return self.ensure() / "pool"

    # -- volumes --------------------------------------------------------------------------
    def create(self, volume_id: str, size_gib: int, source: Path | None = None) -> Path:
        """A volume of `size_gib`: a fresh ext4 filesystem, or a reflinked copy of the
        snapshot `source` (grown to the new size on its next mount). Idempotent: made under
        a staging name and renamed."""
        path = self.volume(volume_id)
        if path.exists():
            return path
        staging = path.with_name(path.name + ".new")
        staging.unlink(missing_ok=True)
        try:
            if source is not None:
                hostcmd.run(["cp", "--reflink=always", str(source),
                             str(staging)])
                if staging.stat().st_size < size_gib * GIB:
                    with open(staging, "r+b") as f:
                        f.truncate(size_gib * GIB)
            else:
                with open(staging, "wb") as f:
                    f.truncate(size_gib * GIB)
                hostcmd.run(["mkfs.xfs", "-q", "-f", str(staging)])
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        staging.rename(path)
        return path

    def delete(self, name: str) -> None:
        """A volume's or snapshot's file goes (idempotent)."""
        with contextlib.suppress(FileNotFoundError):
            (self.ensure() / f"{name}.img").unlink()

    def grow(self, volume_id: str, size_gib: int) -> None:
        """The file grows; a mounted filesystem on it grows online, an unmounted one at its
        next mount (`grow_filesystem`)."""
        path = self.volume(volume_id)
        if path.stat().st_size < size_gib * GIB:
            with open(path, "r+b") as f:
                f.truncate(size_gib * GIB)
        loop = self.loop_devices().get(str(path))
        if loop is not None:
            hostcmd.run(["losetup", "-c", loop])
            mounted = mounts_of(loop)
            if not mounted:
                return
            try:
                grow_mounted(loop, mounted[0])
            except HostCommandFailed as err:
                # ext4 online growth needs CAP_SYS_RESOURCE, which some hosts' root lacks:
                # that filesystem then grows at its next mount (mount_volume).
                log.warning("%s grows at its next mount: %s", volume_id, err)

    # -- snapshots ------------------------------------------------------------------------
    def take_snapshots(self, pairs: list[tuple[Path, str]]) -> None:
        """Point-in-time copies of several volume files at one instant: every mounted one
        is frozen (its dirty data flushed, new writes held) while all are reflinked, then
        thawed. Crash-consistent together, as EC2's multi-volume snapshots are.
        Serialized (the API and the EBS controller may ask at once: a second freeze of a
        frozen filesystem fails); a snapshot already taken is not taken again."""
        with self._snapshot_lock:
            wanted = [(volume, self.snapshot(snapshot_id)) for volume, snapshot_id in pairs
                      if not self.snapshot(snapshot_id).exists()]
            if not wanted:
                return
            with self.frozen([volume for volume, _ in wanted]):
                for volume, target in wanted:
                    staging = target.with_name(target.name + ".new")
                    hostcmd.run(["cp", "--reflink=always", str(volume), str(staging)])
                    staging.chmod(0o400)
                    staging.rename(target)

    @contextlib.contextmanager
    def frozen(self, volumes: list[Path]) -> Iterator[None]:
        loops = self.loop_devices()
        points = []
        for volume in volumes:
            loop = loops.get(str(volume))
            mounted = mounts_of(loop) if loop else []
            if mounted:
                points.append(mounted[0])
        thawed: list[str] = []
        try:
            for point in points:
                hostcmd.run(["fsfreeze", "-f", point])
                thawed.append(point)
            yield
        finally:
            for point in thawed:
                hostcmd.run(["fsfreeze", "-u", point], check=False)

    def remove_everything(self) -> None:
        """`doctor --clean` + data dir removal: unmount (the image file stays)."""
        for mount in [m for m in storage.mountpoints() if m.startswith(str(self.root) + "/")]:
            hostcmd.run(["umount", "-l", mount], check=False)
        if storage.is_mounted(self.root):
            hostcmd.run(["umount", "-l", str(self.root)], check=False)


def mounts_of(device: str) -> list[str]:
    """Mount points of a block device (from /proc/self/mountinfo), shortest first."""
    dev = os.stat(device).st_rdev
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[2] == wanted:
                points.append(fields[4].encode().decode("unicode_escape"))
    return sorted(points, key=len)


def filesystem_type(path: Path) -> str:
    return subprocess.run(["blkid", "-o", "value", "-s", "TYPE", str(path)],
                          capture_output=True, text=True).stdout.strip()


def mount_options(kind: str, readonly: bool = False) -> str:
    """Volumes made from one snapshot share an XFS UUID: `nouuid` lets them mount side by
    side. Read-only mounts never replay a journal (the file must stay as it is)."""
    if kind == "xfs":
        return "loop,nodev,nosuid,nouuid" + (",ro,norecovery" if readonly else "")
    return "loop,nodev,nosuid" + (",ro,noload" if readonly else "")


def mount_volume(path: Path, point: Path) -> None:
    """Mounted, its filesystem filling the volume: XFS grows online after the mount;
    ext4 (volumes made before XFS, root disks) offline before it (fit_filesystem)."""
    kind = filesystem_type(path)
    if kind != "xfs":
        fit_filesystem(path)
    hostcmd.run(["mount", "-o", mount_options(kind), str(path), str(point)])
    storage.direct_io(point)
    if kind == "xfs":
        hostcmd.run(["xfs_growfs", str(point)])


def grow_mounted(device: str, point: str) -> None:
    if filesystem_type(Path(device)) == "xfs":
        hostcmd.run(["xfs_growfs", point])
    else:
        hostcmd.run(["resize2fs", device])


def fit_filesystem(path: Path) -> None:
    """Before a mount: an ext4 smaller than its file (a volume made larger than its
    snapshot, or grown while unmounted) grows to fill it, offline."""
    header = hostcmd.run(["dumpe2fs", "-h", str(path)], timeout=60)
    fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    fs_bytes = int(fields["Block count"]) * int(fields["Block size"])
    if path.stat().st_size - fs_bytes < 8 * MIB:
        return
    check = subprocess.run(["e2fsck", "-f", "-p", str(path)], capture_output=True, text=True)
    if check.returncode > 1:  # 1: errors fixed
        raise HostCommandFailed(["e2fsck", "-f", "-p", str(path)], check.returncode,
                                check.stderr or check.stdout)
    hostcmd.run(["resize2fs", str(path)], timeout=600)
