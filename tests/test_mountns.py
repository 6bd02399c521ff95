"""runc's mount namespace (agent/mountns.py): below the instances directory it holds the
launching instance's mounts only, and nothing done there reaches the host, above all
not the unmount of other instances' shared `mnt` trees."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gureum.agent import mountns, storage, sysmount


def _mounts_here() -> str:
    with open("/proc/thread-self/mountinfo") as f:
        return f.read()


@pytest.fixture
def instances() -> Iterator[Path]:
    root = Path(f"/tmp/gureum-t{secrets.token_hex(4)}")  # this test's own
    parent = root / "instances"
    parent.mkdir(parents=True)
    try:
        yield parent
    finally:
        inside = str(root) + "/"
        for mount in sorted((m for m in storage.mountpoints() if m.startswith(inside)),
                            key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _instance(parent: Path, name: str) -> Path:
    """An instance-like tree: a disk mount and a shared `mnt` with a volume below it."""
    d = parent / name
    for sub in ("disk", "mnt"):
        (d / sub).mkdir(parents=True)
    sysmount.mount("tmpfs", d / "disk", "tmpfs", data="size=1m")
    sysmount.bind_shared(d / "mnt")
    (d / "mnt" / "vol").mkdir()
    sysmount.mount("tmpfs", d / "mnt" / "vol", "tmpfs", data="size=1m")
    return d


def test_runc_sees_its_own_instance_and_the_host_keeps_everything(instances: Path) -> None:
    assert mountns.ensure_parent(instances)
    mine, other = _instance(instances, "i-a"), _instance(instances, "i-b")

    seen = mountns.with_only(mine, _mounts_here)
    assert f"{mine}/disk " in seen and f"{mine}/mnt/vol " in seen
    assert f"{other}/" not in seen, "another instance's mounts are out of runc's sight"
    # The host keeps all: above all the other instance's volume, whose parent `mnt` is
    # shared with the copy where it was unmounted.
    host = storage.mountpoints()
    for path in ("disk", "mnt", "mnt/vol"):
        assert str(mine / path) in host and str(other / path) in host

    mountns.release_parent(instances)  # instances still mounted below: stays
    assert storage.is_mounted(instances)


def test_of_the_network_namespaces_only_its_own(instances: Path) -> None:
    """Network namespaces are mounts too (files below /run/netns, a mount of its own):
    runc sees the one it joins."""
    assert mountns.ensure_parent(instances)
    mine = _instance(instances, "i-d")
    netns_dir = instances.parent / "netns"
    netns_dir.mkdir()
    sysmount.mount(str(netns_dir), netns_dir, flags=sysmount.MS_BIND)
    for name in ("i-d", "i-e"):
        (netns_dir / name).touch()
        sysmount.mount("/proc/self/ns/net", netns_dir / name, flags=sysmount.MS_BIND)

    seen = mountns.with_only(mine, _mounts_here, netns_dir / "i-d")
    assert f"{netns_dir}/i-d " in seen and f"{mine}/disk " in seen
    assert f"{netns_dir}/i-e " not in seen
    assert {str(netns_dir / "i-d"), str(netns_dir / "i-e")} <= storage.mountpoints()


def test_without_a_parent_mount_it_runs_in_the_host_namespace(instances: Path) -> None:
    mine = _instance(instances, "i-c")
    assert mountns.ensure_parent(instances) is False, "not over live mounts"
    assert not storage.is_mounted(instances)
    seen = mountns.with_only(mine, _mounts_here)
    assert seen == _mounts_here()


def test_the_parent_goes_when_nothing_is_below(instances: Path) -> None:
    assert mountns.ensure_parent(instances) and storage.is_mounted(instances)
    mountns.release_parent(instances)
    assert not storage.is_mounted(instances)
