"""Root disks: a sparse ext4 file per instance (a real size limit) holding the overlay's
upper layer over the shared, idmapped, read-only image.

Layout under the instance directory:
  disk.img     the instance's disk (survives stop/start, deleted on terminate)
  disk/        disk.img mounted (loop); upper/ and work/ of the overlay live in it
  lower/       the image root, idmapped to the instance's uid range, read-only
  rootfs/      the overlay: what the instance sees as /
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from pathlib import Path

from gureum.agent import hostcmd, idmap, loopdev, sysmount


def mountpoints() -> set[str]:
    points = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            points.add(line.split()[4].encode().decode("unicode_escape"))
    return points


class _Statx(ctypes.Structure):
    _fields_ = [("stx_mask", ctypes.c_uint32), ("stx_blksize", ctypes.c_uint32),
                ("stx_attributes", ctypes.c_uint64), ("rest", ctypes.c_uint8 * 240)]


_AT_FDCWD, _AT_SYMLINK_NOFOLLOW, _STATX_ATTR_MOUNT_ROOT = -100, 0x100, 0x2000


def is_mounted(path: Path) -> bool:
    """Whether `path` is a mount point (a bind of a directory onto itself included). One
    statx(2) (STATX_ATTR_MOUNT_ROOT) instead of reading the whole mount table, which
    grows with every instance on the host; the table where the kernel cannot tell."""
    buf = _Statx()
    if sysmount.libc.statx(_AT_FDCWD, str(path).encode(), _AT_SYMLINK_NOFOLLOW, 0, ctypes.byref(buf)) != 0:
        return False
    # stx_attributes_mask: the u64 at offset 56 of struct statx (40 into `rest`).
    if int.from_bytes(bytes(buf.rest[40:48]), "little") & _STATX_ATTR_MOUNT_ROOT:
        return bool(buf.stx_attributes & _STATX_ATTR_MOUNT_ROOT)
    return str(path) in mountpoints()


def create_disk(disk: Path, size_gib: int, owner: int, nice: bool = False) -> None:
    """Made under a temporary name and renamed: a crash never leaves a half-made disk.
    `nice`: at the lowest CPU priority (the disk pool's refills, off any launch path)."""
    staging = disk.with_name(disk.name + ".new")
    with open(staging, "wb") as f:
        f.truncate(size_gib * 1024**3)
    try:
        hostcmd.run([
            *(["nice", "-n", "19"] if nice else []), "mkfs.ext4", "-q", "-F", "-m", "0",
            "-E", f"lazy_itable_init=1,lazy_journal_init=1,root_owner={owner}:{owner}",
            str(staging),
        ])
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    staging.rename(disk)


LOOP_SET_DIRECT_IO = 0x4C08


def direct_io(mount_point: Path) -> None:
    """The loop device mounted at `mount_point` reads and writes its file with direct
    I/O: data is cached once (by the filesystem on the loop device), not a second time in
    the host's page cache for the file, and an fsync inside reaches the disk sooner. One
    ioctl (no process); kept buffered where the file's filesystem refuses."""
    dev = os.stat(mount_point).st_dev
    try:
        uevent = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/uevent").read_text()
        name = next(line.split("=", 1)[1] for line in uevent.splitlines()
                    if line.startswith("DEVNAME="))
        if not name.startswith("loop"):
            return
        fd = os.open(f"/dev/{name}", os.O_RDONLY)
        try:
            fcntl.ioctl(fd, LOOP_SET_DIRECT_IO, 1)
        finally:
            os.close(fd)
    except (OSError, StopIteration):
        pass


def mount_disk(disk: Path, target: Path, owner: int) -> None:
    target.mkdir(exist_ok=True)
    loopdev.mount_file(disk, target, "ext4")
    os.chown(target, owner, owner)  # a pooled disk was formatted before its owner was known
    for sub in ("upper", "work"):
        path = target / sub
        if not path.exists():
            path.mkdir(mode=0o755)
            os.chown(path, owner, owner)


def mount_lower(image_root: Path, target: Path, owner: int) -> None:
    target.mkdir(exist_ok=True)
    idmap.mount_idmapped(str(image_root), str(target), owner, readonly=True)


def mount_overlay(lower: Path, disk: Path, target: Path, owner: int) -> None:
    target.mkdir(exist_ok=True)
    os.chown(target, owner, owner)
    sysmount.overlay(lower, disk / "upper", disk / "work", target)


def unmount(path: Path) -> None:
    """Idempotent: unmounting what is not mounted is success. Loop devices auto-clear."""
    if is_mounted(path):
        hostcmd.run(["umount", str(path)])


def remove_disk(disk: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        disk.unlink()
