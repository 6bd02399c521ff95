"""Per-instance disk I/O limits through the cgroup v1 blkio controller.

Each disk of an instance (its root disk, its attached volumes) is a loop device of its
own; the instance's blkio cgroup carries `blkio.throttle.{read,write}_{bps,iops}_device`
for each one, from the volume's `IoLimits`. At launch they go into the OCI spec (runc
writes them as it makes the cgroup); a volume attached to a running instance gets them
written here, and a detached one has them cleared ("MAJ:MIN 0" removes a rule).

What cgroup v1 cannot do: buffered writes reach the disk from the kernel's flusher
threads, which v1 charges to the root cgroup, so they are not throttled here (cgroup
writeback needs the v2 hierarchy for both memory and io). Reads, direct I/O and
synchronous writes (O_DIRECT, O_SYNC, fsync'd data, journalled metadata) are. The
instance's dirty pages are still bounded by its memory limit.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from gureum.agent.contract import IoLimits

BLKIO_ROOT = Path("/sys/fs/cgroup/blkio")
FILES = ("read_bps", "write_bps", "read_iops", "write_iops")


@dataclass(frozen=True)
class DiskThrottle:
    major: int
    minor: int
    limits: IoLimits

    def rates(self) -> dict[str, int]:
        """File stem -> rate, per direction."""
        bps, iops = self.limits.bytes_per_second, self.limits.iops
        return {"read_bps": bps, "write_bps": bps, "read_iops": iops, "write_iops": iops}


def device_of(mountpoint: Path) -> tuple[int, int] | None:
    """(major, minor) of the block device a mounted filesystem lives on."""
    try:
        dev = os.stat(mountpoint).st_dev
    except OSError:
        return None
    return os.major(dev), os.minor(dev)


def throttle(mountpoint: Path, limits: IoLimits | None) -> DiskThrottle | None:
    device = device_of(mountpoint) if limits is not None else None
    if device is None or limits is None or device[0] == 0:  # 0: not a block device
        return None
    return DiskThrottle(device[0], device[1], limits)


def oci_block_io(disks: tuple[DiskThrottle, ...]) -> dict[str, list[dict[str, int]]]:
    """The OCI spec's `linux.resources.blockIO` for these disks."""
    keys = {"read_bps": "throttleReadBpsDevice", "write_bps": "throttleWriteBpsDevice",
            "read_iops": "throttleReadIOPSDevice", "write_iops": "throttleWriteIOPSDevice"}
    out: dict[str, list[dict[str, int]]] = {}
    for disk in disks:
        for stem, rate in disk.rates().items():
            out.setdefault(keys[stem], []).append(
                {"major": disk.major, "minor": disk.minor, "rate": rate})
    return out


def apply(cgroup: Path, disk: DiskThrottle) -> None:
    """Write one disk's limits into a live cgroup (a volume attached while running)."""
    for stem, rate in disk.rates().items():
        (cgroup / f"blkio.throttle.{stem}_device").write_text(f"{disk.major}:{disk.minor} {rate}")


def clear(cgroup: Path, device: tuple[int, int]) -> None:
    """Remove one device's limits (its volume is being detached). Idempotent."""
    for stem in FILES:
        with contextlib.suppress(OSError):
            (cgroup / f"blkio.throttle.{stem}_device").write_text(f"{device[0]}:{device[1]} 0")


def read(cgroup: Path) -> dict[str, dict[str, int]]:
    """File stem -> {"MAJ:MIN": rate}, as the kernel holds them (for tests and doctor)."""
    out: dict[str, dict[str, int]] = {}
    for stem in FILES:
        rules: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (cgroup / f"blkio.throttle.{stem}_device").read_text().splitlines():
                device, _, rate = line.partition(" ")
                rules[device] = int(rate)
        out[stem] = rules
    return out
