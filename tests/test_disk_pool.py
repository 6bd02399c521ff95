"""The root-disk pool: disks made ahead (real mkfs.ext4 on sparse files), each used once,
refilled in the background, stale half-made files swept."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gureum.agent.disk_pool import DiskPool
from gureum.testing import wait_for


def test_take_moves_a_formatted_disk_and_the_pool_refills(tmp_path: Path) -> None:
    pool = DiskPool(tmp_path / "pool", size_gib=1, depth=2)
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "make-1-2.img.new").write_bytes(b"half made by a crash")
    pool.refill()
    assert len(pool.ready()) == 2
    assert not list((tmp_path / "pool").glob("*.new"))
    disk = tmp_path / "disk.img"
    assert pool.take(disk, 1)
    assert disk.stat().st_size == 1024**3 and disk.stat().st_blocks * 512 < 64 * 2**20  # sparse
    blkid = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", str(disk)],
                           capture_output=True, text=True)
    assert blkid.stdout.strip() == "ext4"
    assert not pool.take(tmp_path / "other.img", 2), "only the pool's size is pooled"
    assert wait_for(lambda: len(pool.ready()) == 2, 10), "refilled in the background"
    others = {p.name for p in pool.ready()}
    assert pool.take(tmp_path / "second.img", 1) and disk.name not in others
