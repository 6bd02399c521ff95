"""Idmapped mounts through the new mount API (util-linux here has no X-mount.idmap).

The image directory is owned by host root; an instance's container root is host uid
`base`. An idmapped bind of the image shifts its owners by `base` without copying it.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)

_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_SYS_SETNS = 308
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_IDMAP = 0x00100000
_MOUNT_ATTR_RDONLY = 0x1


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def userns_fd(base: int, size: int = 65536) -> int:
    """An fd of a user namespace mapping 0..size to base..base+size (for MOUNT_ATTR_IDMAP).

    The namespace is made by a small spawned process (unshare(1)), not a fork of this one:
    forking a large, many-threaded control plane costs ms per launch and serializes
    launches of a batch."""
    helper = subprocess.Popen(["unshare", "--user", "--", "sh", "-c", "echo; read _"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    assert helper.stdin is not None and helper.stdout is not None
    try:
        if helper.stdout.readline() != b"\n":  # printed from inside the new namespace
            raise OSError("unshare --user failed in helper")
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{helper.pid}/{name}", "w") as f:
                f.write(f"0 {base} {size}\n")
        return os.open(f"/proc/{helper.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        helper.stdin.close()
        helper.stdout.close()
        helper.wait()


def mount_idmapped(source: str, target: str, base: int, readonly: bool = True) -> None:
    """Bind `source` at `target`, owners shifted by `base`."""
    ns = userns_fd(base)
    tree = -1
    try:
        tree = _check(
            _libc.syscall(
                _SYS_OPEN_TREE,
                _AT_FDCWD,
                source.encode(),
                ctypes.c_uint(_OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC | _AT_RECURSIVE),
            ),
            f"open_tree({source})",
        )
        attr_set = _MOUNT_ATTR_IDMAP | (_MOUNT_ATTR_RDONLY if readonly else 0)
        attr = ctypes.create_string_buffer(struct.pack("QQQQ", attr_set, 0, 0, ns), 32)
        _check(
            _libc.syscall(
                _SYS_MOUNT_SETATTR, tree, b"", ctypes.c_uint(_AT_EMPTY_PATH | _AT_RECURSIVE),
                attr, ctypes.c_size_t(32),
            ),
            f"mount_setattr({source})",
        )
        _check(
            _libc.syscall(
                _SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, target.encode(),
                ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH),
            ),
            f"move_mount({target})",
        )
    finally:
        if tree >= 0:
            os.close(tree)
        os.close(ns)


def in_netns(netns_path: str, work: Callable[[], T]) -> T:
    """Run `work` inside a network namespace, in a short-lived thread.

    setns(CLONE_NEWNET) moves only the calling thread, so a throwaway thread keeps the
    rest of the process in the host namespace whatever happens. Sockets made there stay
    in that namespace for good (the DNS and metadata listeners of each VPC).
    """
    result = in_each_netns([netns_path], lambda _: work())[0]
    if isinstance(result, Exception):
        raise result
    return result


def in_each_netns(netns_paths: list[str], work: Callable[[str], T]) -> list[T | Exception]:
    """Run `work(path)` inside each network namespace in turn, from one short-lived
    thread that moves from one to the next (setns may be called again): a thread per
    namespace cost about as much as the work itself when a change touches hundreds. One
    namespace's failure is its result; the others still run."""
    results: list[T | Exception] = []

    def run() -> None:
        for path in netns_paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _check(_libc.syscall(_SYS_SETNS, fd, 0x40000000), f"setns({path})")
                finally:
                    os.close(fd)
                results.append(work(path))
            except Exception as exc:  # noqa: BLE001 - this namespace's result
                results.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return results


def write_in_netns(netns_path: str, files: dict[str, str]) -> None:
    """Write /proc/sys knobs inside a network namespace."""

    def write() -> None:
        for path, value in files.items():
            with open(path, "w") as f:
                f.write(value)

    in_netns(netns_path, write)
