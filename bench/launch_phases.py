"""Where a launch's host-side time goes: each step of HostAgent.launch timed in-process
(no API, no controller), on its own data directory, VPC and public range.

Peer: the runc create+start line is the floor DESIGN.md measured for a bare container."""

from __future__ import annotations

import argparse
import functools
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import console, latency_table

from gureum.agent import firstboot, network, storage
from gureum.agent.agent import HostAgent
from gureum.agent.contract import InstanceSpec
from gureum.agent.image import default_image
from gureum.agent.network import VpcNetwork
from gureum.agent.runtime.base import Limits
from gureum.config import Config

Timings = dict[str, list[float]]


def timed(timings: Timings, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            # The disk pool's background refills are not part of any launch.
            if threading.current_thread().name != "disk-pool":
                timings.setdefault(label, []).append(time.perf_counter() - start)
    return wrapper


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--no-pool", action="store_true",
                        help="make every disk in the launch path, as before the disk pool")
    args = parser.parse_args()
    timings: Timings = {}
    for module, name, label in (
            (storage, "create_disk", "disk: sparse file + mkfs.ext4"),
            (storage, "mount_disk", "disk: loop mount"),
            (storage, "mount_lower", "image: idmapped bind"),
            (storage, "mount_overlay", "rootfs: overlay"),
            (firstboot, "provision", "first boot files (host keys, ...)"),
            (network, "create_instance_netns", "netns + cable to the VPC bridge"),
            (network, "map_public_ip", "public address map")):
        setattr(module, name, timed(timings, label, getattr(module, name)))
    data = Path(f"/var/tmp/gureum-bench-phases-{secrets.token_hex(3)}")
    data.mkdir(mode=0o755)
    cfg = Config(data_dir=data)
    cfg.public_pool = f"127.{200 + secrets.randbelow(50)}.0.0/16"
    agent = HostAgent(cfg)
    runtime = agent.driver.runtime  # type: ignore[attr-defined]  (the container driver)
    runtime.start = timed(timings, "runc create + start", runtime.start)
    disks = agent.driver.disks  # type: ignore[attr-defined]
    disks.take = timed(timings, "disk: taken from the pool (rename)", disks.take)
    if args.no_pool:
        disks.size_gib, disks.depth = -1, 0  # nothing matches: every launch makes its disk
    else:
        disks.refill()  # as after the agent has run a while
        timings.clear()  # those were not launches
    image = default_image(cfg.image_cache)
    vpc = VpcNetwork("vpc-0000000000000bench", 1, "10.250.0.0/16", ("10.250.0.0/20",))
    specs = []
    try:
        agent.ensure_host_network()
        agent.ensure_vpc(vpc)
        for i in range(args.samples):
            spec = InstanceSpec(
                instance_id=f"i-{i:017x}", slot=i + 1, vpc=vpc, subnet_cidr="10.250.0.0/20",
                private_ip=f"10.250.0.{i + 4}", public_ip=cfg.public_pool.replace(".0.0/16", f".0.{i + 1}"),
                hostname=f"ip-10-250-0-{i + 4}", limits=Limits(vcpus=1, memory_mib=512, pids=1024),
                volume_gib=8, image_root=Path(image.rootfs), authorized_key=None,
                root_volume_id=f"vol-{i:017x}")
            specs.append(spec)
            timed(timings, "HostAgent.launch, all of it", agent.launch)(spec)
    finally:
        for spec in specs:
            agent.destroy(spec)
        agent.remove_vpc(vpc.vpc_id)
        agent.remove_host_network()
        agent.remove_cgroup_parents()
        leftovers = {k: v for k, v in agent.host_objects().items() if v}
        shutil.rmtree(data, ignore_errors=True)
    console.print(latency_table("host-side launch phases (one instance at a time)", timings,
                                unit="ms"))
    if leftovers:
        raise SystemExit(f"host objects leaked: {leftovers}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
