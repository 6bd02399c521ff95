"""mount(2) itself, for the mounts on a launch's path: each saves a mount(8) process
(under 1 ms on an idle machine, a few when launches contend for the CPU). Failures are `MountFailed` naming what was asked."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from gureum.errors import MountFailed

libc = ctypes.CDLL(None, use_errno=True)  # shared by the agent's other syscall modules

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_MOVE = 0x2000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20


def mount(source: str, target: Path, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    if libc.mount(source.encode(), str(target).encode(),
                   fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                   data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise MountFailed(f"mount {source} at {target} ({fstype or 'bind'}, flags {flags:#x}"
                          f"{', ' + data if data else ''}): {os.strerror(err)}")


def bind_shared(path: Path) -> None:
    """`path` bound onto itself and made a shared mount (a peer group of its own)."""
    mount(str(path), path, flags=MS_BIND)
    mount("none", path, flags=MS_SHARED)


def overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    mount("overlay", target, "overlay", data=f"lowerdir={lower},upperdir={upper},workdir={work}")
