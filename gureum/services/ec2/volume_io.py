"""What each EBS volume may do on the host's disk: its type's AWS rate, scaled to the host.

The agent enforces the result per instance through the blkio controller on the volume's
loop device (`agent/runtime/blkio.py`), so one instance's disk work cannot starve its
neighbours'. AWS's figures per type (https://docs.aws.amazon.com/ebs/latest/userguide/
ebs-volume-types.html); where AWS lets a small volume burst on credits (gp2, st1, sc1,
standard), the burst rate is the limit, as gureum keeps no credits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gureum.agent.contract import IoLimits

if TYPE_CHECKING:
    from gureum.store.ebs_models import Volume

MIB = 1024 * 1024
# Never below these, whatever the scale: 0 would mean "unlimited" to the kernel.
MIN_IOPS = 10
MIN_BYTES_PER_SECOND = 1 * MIB


def aws_rate(volume_type: str, size_gib: int, iops: int | None,
             throughput_mibps: int | None) -> tuple[int, int]:
    """(IOPS, MiB/s) a volume of this type, size and provisioned figures gets on AWS."""
    tib = size_gib / 1024
    if volume_type == "gp3":
        return iops or 3000, throughput_mibps or 125
    if volume_type == "gp2":
        baseline = min(max(100, 3 * size_gib), 16000)
        return (max(baseline, 3000) if size_gib < 1024 else baseline), \
            (128 if size_gib <= 170 else 250)
    if volume_type in ("io1", "io2"):
        provisioned = iops or 100
        # 256 KiB per I/O at the provisioned rate, up to the type's ceiling.
        return provisioned, min(provisioned // 4, 1000 if volume_type == "io1" else 4000)
    if volume_type == "st1":
        return 500, min(500, max(1, int(250 * tib)))
    if volume_type == "sc1":
        return 250, min(250, max(1, int(80 * tib)))
    return 200, 90  # standard (magnetic): "hundreds of IOPS", 40-90 MiB/s


def io_limits(volume_type: str, size_gib: int, iops: int | None,
              throughput_mibps: int | None, scale: float) -> IoLimits | None:
    """The volume's AWS rate times `scale` (the host's disk against an EBS volume's);
    None (unthrottled) when the scale is 0."""
    if scale <= 0:
        return None
    rate_iops, rate_mibps = aws_rate(volume_type, size_gib, iops, throughput_mibps)
    return IoLimits(iops=max(MIN_IOPS, round(rate_iops * scale)),
                    bytes_per_second=max(MIN_BYTES_PER_SECOND, round(rate_mibps * MIB * scale)))


def of_volume(row: Volume, scale: float) -> IoLimits | None:
    return io_limits(row.volume_type, row.size_gib, row.iops, row.throughput, scale)
