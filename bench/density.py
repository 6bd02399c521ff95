"""Density: launch idle instances in batches until --count, printing host memory per idle
instance (MemAvailable drop: its processes, runc, netns, mounts, page tables, all of it)
and single-instance launch -> sshd latency as the count grows (the median of 5 probes,
each terminated before the next; the row "0" is the launch on an empty host).

Target: under 16 MiB of host memory per idle instance, 200 instances, launch under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import bench_server, console, terminate_all
from rich.table import Table

from gureum.testing import ssh_banner, wait_for


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable")


PROBES = 5


def probe_latency(ec2, image: str) -> float:  # noqa: ANN001
    """One more instance, launched and terminated PROBES times: the median launch -> sshd
    banner with the instances already there."""
    latencies = []
    for _ in range(PROBES):
        t0 = time.monotonic()
        probe = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                                  MaxCount=1)["Instances"][0]
        wait_for(lambda p=probe: ssh_banner(p["PublicIpAddress"]), 60, interval=0.005)
        latencies.append(time.monotonic() - t0)
        ec2.terminate_instances(InstanceIds=[probe["InstanceId"]])
        wait_for(lambda p=probe: gone(ec2, p["InstanceId"]), 60, interval=0.1)
    return statistics.median(latencies)


def gone(ec2, instance_id: str) -> bool:  # noqa: ANN001
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return inst["State"]["Name"] == "terminated"


def all_running(ec2) -> bool:  # noqa: ANN001
    states = [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"]
              for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return all(s == "running" for s in states)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    # Every t3.nano has an 8 GiB root volume: the account's storage quota must hold them.
    quota = {"GUREUM_VOLUME_QUOTA_GIB": str(max(5120, 8 * (args.count + 10)))}
    with bench_server("density", max_instances=args.count + 10, env=quota) as server:
        ec2 = server.client()
        try:
            image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
            time.sleep(1)
            table = Table(title=f"density: idle t3.nano instances (batches of {args.batch})")
            for col in ("instances", "host MiB used by them", "MiB per instance",
                        "launch -> sshd banner (s), one more instance, median of 5"):
                table.add_column(col, justify="right")
            count = 0
            per_instance = []
            baseline = mem_available_mib()
            probe_latency(ec2, image)  # warm-up: the VPC's router and the disk pool are made
            table.add_row("0", "", "", f"{probe_latency(ec2, image):.3f}")
            while count < args.count:
                n = min(args.batch, args.count - count)
                ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=n, MaxCount=n)
                count += n
                wait_for(lambda: all_running(ec2), 300, interval=0.2)
                time.sleep(2)  # let page cache and slab settle
                used = baseline - mem_available_mib()
                per_instance.append(used / count)
                latency = probe_latency(ec2, image)
                table.add_row(str(count), f"{used:.0f}", f"{used / count:.1f}", f"{latency:.3f}")
                # a line per batch as it comes: a long run that dies still leaves its rows
                console.print(f"{count} instances: {used:.0f} MiB, {used / count:.1f} MiB each, "
                              f"launch -> banner {latency:.3f} s")
            console.print(table)
            console.print(f"median MiB per idle instance across batches: {statistics.median(per_instance):.1f}")
        finally:  # a run that fails half-way still leaves nothing behind
            terminate_all(ec2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
