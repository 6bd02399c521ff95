"""Image roots made from snapshots (CreateImage, RegisterImage): plain directories under
`<data>/images/<image id>/rootfs`, used as an instance's read-only lower layer exactly as
the built-in image is.

A root disk holds only the instance's changes (the overlay's upper layer) with owners of
the instance's uid range. Its image is the merge of those changes over the parent image,
made by a read-only overlay (which applies whiteouts and opaque directories) and copied
out, owners shifted back to the image's own ids (0 = root). A data volume's snapshot is a
whole filesystem already: it is copied as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from gureum.agent import hostcmd, storage
from gureum.agent.volume_store import filesystem_type, mount_options


def image_dir(data_dir: Path, image_id: str) -> Path:
    return data_dir / "images" / image_id


def build(data_dir: Path, image_id: str, snapshot: Path, parent_root: Path | None) -> Path:
    target = image_dir(data_dir, image_id)
    if (target / "complete").exists():
        return target / "rootfs"
    staging = target.with_name(target.name + ".building")
    _remove(staging)
    snap, merged = staging / "snapshot", staging / "merged"
    for path in (snap, merged):
        path.mkdir(parents=True)
    try:
        hostcmd.run(["mount", "-o", mount_options(filesystem_type(snapshot), readonly=True),
                     str(snapshot), str(snap)])
        source, uid_base = snap, 0
        if parent_root is not None:
            # The disk's upper/ belongs to the container root it was written by.
            uid_base = (snap / "upper").stat().st_uid
            hostcmd.run(["mount", "-t", "overlay", "overlay", "-o",
                         f"ro,lowerdir={snap / 'upper'}:{parent_root}", str(merged)])
            source = merged
        hostcmd.run(["cp", "-a", "--one-file-system", f"{source}/.", str(staging / "rootfs")],
                    timeout=1800)
        for mount in (merged, snap):
            storage.unmount(mount)
        if uid_base >= 65536:
            shift_owners(staging / "rootfs", uid_base)
        if parent_root is None:  # a whole filesystem: its lost+found is no part of a root
            _remove(staging / "rootfs" / "lost+found")
        else:
            forget_identity(staging / "rootfs")
        (staging / "rootfs").chmod(0o755)
        (staging / "complete").write_text(image_id + "\n")
        for path in (snap, merged):
            path.rmdir()
    except BaseException:
        for mount in (merged, snap):
            with contextlib.suppress(Exception):
                storage.unmount(mount)
        _remove(staging)
        raise
    _remove(target)
    staging.rename(target)
    return target / "rootfs"


def forget_identity(root: Path) -> None:
    """What made the imaged instance itself is not copied to the next ones: an empty
    machine-id (made afresh at their first boot, as cloud images ship it)."""
    machine_id = root / "etc/machine-id"
    if machine_id.is_file() and not machine_id.is_symlink():
        machine_id.write_text("")


def shift_owners(root: Path, uid_base: int) -> None:
    """Owners written through the instance's uid range (base + n) become n again."""
    def shift(path: str) -> None:
        st = os.lstat(path)
        uid = st.st_uid - uid_base if st.st_uid >= uid_base else st.st_uid
        gid = st.st_gid - uid_base if st.st_gid >= uid_base else st.st_gid
        if (uid, gid) != (st.st_uid, st.st_gid):
            os.lchown(path, uid, gid)
            if not os.path.islink(path) and st.st_mode & 0o6000:
                os.chmod(path, st.st_mode & 0o7777)  # chown clears setuid/setgid bits

    shift(str(root))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            shift(os.path.join(dirpath, name))


def delete(data_dir: Path, image_id: str) -> None:
    for path in (image_dir(data_dir, image_id),
                 image_dir(data_dir, image_id).with_name(image_id + ".building")):
        _remove(path)


def _remove(path: Path) -> None:
    """Never through a mount: what is mounted below goes first."""
    for mount in sorted((m for m in storage.mountpoints() if m.startswith(f"{path}/")),
                        key=len, reverse=True):
        hostcmd.run(["umount", "-l", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)
