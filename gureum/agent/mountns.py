"""runc started in a mount namespace that holds one instance's mounts, not every one's.

Every instance adds five mounts to the host (its netns, disk, image layer, root and the
shared `mnt`), and runc's work grows with the mount table it starts in: it reads
/proc/self/mountinfo several times, copies the table into the container's namespace,
makes all of it a slave and detaches it again after pivot_root. Measured here, a
`runc run` of /bin/true took 32 ms with the host's 23 mounts, 54 ms with 1,000 more
and 130 ms with 5,000 (200 and 1,000 instances' worth).

So the instances directory is a mount of its own (bound onto itself, private), and runc
is forked from a thread that first moved to a copy of the host's mount namespace where
that whole directory is detached in one call, after the launching instance's own tree
was bound aside and put back: runc then sees the host's mounts and that instance's.
Measured the same way: 37 ms at 1,000 extra mounts, 58 ms at 5,000.

Nothing done in that copy reaches the host: it is made a slave first (an unmount there
would otherwise propagate to the host's peers of each instance's shared `mnt`). The
instance's `mnt` stays a slave of the host's, so volumes attached later still appear in
the container. The copy ends with the thread's last child.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gureum.agent import hostcmd, storage, sysmount
from gureum.errors import MountFailed

T = TypeVar("T")
log = logging.getLogger("gureum.agent")
_CLONE_FS = 0x200
_CLONE_NEWNS = 0x20000
_MNT_DETACH = 2
_lock = threading.Lock()


def _below(instances_dir: Path, mounts: set[str]) -> bool:
    """Whether any of `mounts` is below `instances_dir`."""
    inside = str(instances_dir) + "/"
    return any(m.startswith(inside) for m in mounts)


def ensure_parent(instances_dir: Path) -> bool:
    """`instances_dir` a private mount of its own. Only while nothing is mounted below
    it: binding over live mounts would hide them from the agent. Returns whether it is
    one (if not, launches run runc in the host's namespace, as before)."""
    if storage.is_mounted(instances_dir):
        return True
    with _lock:
        if storage.is_mounted(instances_dir):
            return True
        if _below(instances_dir, storage.mountpoints()):
            return False  # instances from before: the next time the host has none
        instances_dir.mkdir(parents=True, exist_ok=True)
        # Recursive: a mount made below since the check above stays in sight.
        sysmount.mount(str(instances_dir), instances_dir,
                       flags=sysmount.MS_BIND | sysmount.MS_REC)
        sysmount.mount("none", instances_dir, flags=sysmount.MS_PRIVATE)
        return True


def release_parent(instances_dir: Path) -> None:
    """Unmounted, when no instance's mount is below it."""
    with _lock:
        mounts = storage.mountpoints()
        if str(instances_dir) in mounts and not _below(instances_dir, mounts):
            hostcmd.run(["umount", str(instances_dir)], check=False)


def _call(result: int, what: str) -> None:
    if result != 0:
        raise MountFailed(f"{what}: {os.strerror(ctypes.get_errno())}")


def _aside(what: Path, staging: Path, inside: Path) -> None:
    """Detach the mount `inside` (and all below it) in the calling thread's namespace,
    keeping `what`'s tree (below `inside`) through a bind at `staging`."""
    sysmount.mount(str(what), staging, flags=sysmount.MS_BIND | sysmount.MS_REC)
    _call(sysmount.libc.umount2(str(inside).encode(), _MNT_DETACH), f"detaching {inside}")
    sysmount.mount(str(staging), what, flags=sysmount.MS_MOVE)


def _only(instance_dir: Path, staging: Path, netns: Path | None, netns_staging: Path) -> None:
    """In the calling thread: a namespace of its own where, below the instances
    directory, only `instance_dir`'s tree is mounted (and, given `netns`, only that
    one below its directory)."""
    _call(sysmount.libc.unshare(_CLONE_FS | _CLONE_NEWNS), "unshare(CLONE_FS|CLONE_NEWNS)")
    sysmount.mount("none", Path("/"), flags=sysmount.MS_REC | sysmount.MS_SLAVE)
    _aside(instance_dir, staging, instance_dir.parent)
    if netns is not None and storage.is_mounted(netns.parent):
        _aside(netns, netns_staging, netns.parent)


def with_only(instance_dir: Path, work: Callable[[], T], netns: Path | None = None) -> T:
    """`work()` (which forks runc) from a thread whose mount namespace holds the host's
    mounts and `instance_dir`'s, none of the other instances' (and of the network
    namespaces' mounts only `netns`, the one runc joins). When the instances directory
    is not a mount of its own, or the namespace cannot be made, `work()` runs here, in
    the host's namespace."""
    if not storage.is_mounted(instance_dir.parent):
        return work()
    staging = instance_dir.parent.with_name(instance_dir.parent.name + ".launching") / \
        instance_dir.name
    netns_staging = staging.with_name(staging.name + ".netns")
    staging.mkdir(parents=True, exist_ok=True)
    if netns is not None:  # a file bind needs a file to go on
        netns_staging.touch()
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            _only(instance_dir, staging, netns, netns_staging)
        except MountFailed as err:
            outcome.append((False, err))
            return
        try:
            outcome.append((True, work()))
        except BaseException as err:  # noqa: BLE001 - raised again by the caller
            outcome.append((True, err))

    try:
        thread = threading.Thread(target=run, name=f"launch-ns-{instance_dir.name}")
        thread.start()
        thread.join()
    finally:
        with contextlib.suppress(OSError):
            staging.rmdir()
        with contextlib.suppress(OSError):
            netns_staging.unlink()
    ran, result = outcome[0]
    if not ran:
        log.warning("runc for %s runs in the host's mount namespace: %s",
                    instance_dir.name, result)
        return work()
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[return-value]
