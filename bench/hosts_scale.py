"""One control plane against many simulated hosts (issue #13): host rows as joined hosts
write them, each with its own in-memory FakeAgent attached in this process (no TLS: what
is measured is the control plane), heartbeating at the real rate through the same code
as `/_gureum/hosts/heartbeat`. Measured, as the fleet fills:

- RunInstances (one instance) latency, and batches of 100;
- placement decisions per second (`hosts/placement.place` alone, in a read session);
- DescribeInstances latency: one instance by id, and one page of 1000;
- reconcile lag: a probe instance's RunInstances -> `running` when the fleet is full;
- the time for the instance controller to bring a batch to `running`;
- the database's size.

Each batch goes to a VPC of its own (a /24, no internet gateway: no public address)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import console, latency_table, pct
from rich.table import Table

from gureum.agent.fake import FakeAgent
from gureum.hosts import placement, registry
from gureum.store import models
from gureum.store.host_models import Host
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud


def add_hosts(cloud: FastCloud, count: int, zones: list[str]) -> dict[str, FakeAgent]:
    agents: dict[str, FakeAgent] = {}
    now = models.utcnow()
    with cloud.cloud.store.write() as s:
        for i in range(count):
            host_id = registry.new_host_id()
            s.add(Host(host_id=host_id, name=f"sim-{i:04d}", address=f"10.255.{i // 250}.{i % 250}",
                       zone=zones[i % len(zones)], vcpus=64, memory_mib=262144, disk_gib=2000,
                       agent_url=f"https://sim-{i}:7443", cert_fingerprint="sim",
                       agent_secret=f"sim-{i}", last_heartbeat=now))
            agents[host_id] = FakeAgent()
    cloud.cloud.agents.attached.update(agents)
    cloud.cloud.agents.forget()
    return agents


def heartbeats(cloud: FastCloud, agents: dict[str, FakeAgent], stop: threading.Event,
               every: float, beats: list[float]) -> None:
    """Every host beats once per `every` seconds, spread evenly (as real agents would)."""
    hosts = list(agents)
    pause = every / max(1, len(hosts))
    while not stop.is_set():
        for i, host_id in enumerate(hosts):
            if stop.is_set():
                return
            started = time.perf_counter()
            cloud.cloud.heartbeats.beat({"host_id": host_id, "secret": f"sim-{i}"}, "bench")
            beats.append(time.perf_counter() - started)
            time.sleep(max(0.0, pause - (time.perf_counter() - started)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3000)  # 100,000: out of reach, see docs
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("GUREUM_STRICT_SERIALIZER", "0")
    data = Path(tempfile.mkdtemp(prefix="gureum-bench-hosts-"))
    # Metrics every 60 s (not the fast tier's 1 s): what is measured is placement and
    # the controllers, not CloudWatch's writes.
    cloud = FastCloud(data, max_instances_per_account=args.instances + 1000,
                      metrics_interval=60.0, volume_quota_gib=10**9)
    ec2 = cloud.client()
    zone = cloud.cloud.availability_zone
    started = time.perf_counter()
    agents = add_hosts(cloud, args.hosts, [zone])
    console.print(f"{args.hosts} hosts registered in {time.perf_counter() - started:.1f} s")
    # Heartbeat secrets are "sim-<index>", in the agents' order (add_hosts).
    stop, beats = threading.Event(), []
    beat_thread = threading.Thread(target=heartbeats, args=(cloud, agents, stop, 5.0, beats),
                                   daemon=True)
    beat_thread.start()
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    made_vpcs = 0

    def new_subnet() -> str:
        """A VPC of its own per batch: one VPC's metadata is rebuilt and pushed whole
        on each of its launches (a known limit), which this bench does not measure."""
        nonlocal made_vpcs
        cidr = f"10.{made_vpcs // 256}.{made_vpcs % 256}.0/24"
        made_vpcs += 1
        vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr,
                                 AvailabilityZone=zone)["Subnet"]["SubnetId"]

    marks = sorted({m for m in (args.instances // 10, args.instances // 2, args.instances)
                    if m > 0})
    rows: list[list[str]] = []
    made, batch_times, fill_started = 0, [], time.perf_counter()
    for mark in marks:
        while made < mark:
            n = min(args.batch, mark - made)
            subnet = new_subnet()
            t0 = time.perf_counter()
            ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=n, MaxCount=n,
                              SubnetId=subnet)
            batch_times.append(time.perf_counter() - t0)
            made += n
        filled_at = time.perf_counter()
        # The controller catches up: everything made so far running.
        assert wait_for(lambda: _pending(cloud) == 0, 3600, interval=0.5)
        caught_up = time.perf_counter() - filled_at
        run_one, probes, probe_subnet = [], [], new_subnet()
        for _ in range(args.samples):
            t0 = time.perf_counter()
            out = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1, SubnetId=probe_subnet)
            run_one.append(time.perf_counter() - t0)
            probes.append((out["Instances"][0]["InstanceId"], t0))
        lags = []
        for instance_id, t0 in probes:
            assert wait_for(lambda i=instance_id: _state(cloud, i) == "running", 600,
                            interval=0.01)
            lags.append(time.perf_counter() - t0)
        ec2.terminate_instances(InstanceIds=[i for i, _ in probes])
        by_id, page = [], []
        some = [i for i, _ in probes][:10]
        for _ in range(args.samples):
            t0 = time.perf_counter()
            ec2.describe_instances(InstanceIds=[some[0]])
            by_id.append(time.perf_counter() - t0)
        for _ in range(max(3, args.samples // 10)):
            t0 = time.perf_counter()
            ec2.describe_instances(MaxResults=1000)
            page.append(time.perf_counter() - t0)
        decisions = _decisions(cloud, zone, seconds=2.0)
        size = sum(f.stat().st_size for f in data.glob("gureum.db*"))
        rows.append([f"{made}", f"{statistics.median(run_one) * 1e3:.1f}",
                     f"{pct(run_one, 0.95) * 1e3:.1f}", f"{statistics.median(lags) * 1e3:.0f}",
                     f"{pct(lags, 0.95) * 1e3:.0f}", f"{statistics.median(by_id) * 1e3:.1f}",
                     f"{statistics.median(page) * 1e3:.0f}", f"{decisions:.0f}",
                     f"{caught_up:.1f}", f"{size / 2**20:.0f}"])
        console.print(rows[-1])
    stop.set()
    beat_thread.join(10)
    table = Table(title=f"{args.hosts} simulated hosts, FakeAgent, SQLite, this machine")
    for col in ("instances", "RunInstances p50 ms", "p95 ms", "to running p50 ms", "p95 ms",
                "Describe 1 p50 ms", "Describe page 1000 p50 ms", "placements/s",
                "controller catch-up s", "DB MiB"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(latency_table("fill batches and heartbeats", {
        f"RunInstances x{args.batch}": batch_times, "heartbeat (check + queue)": beats}, unit="ms"))
    console.print(f"fill total {time.perf_counter() - fill_started:.0f} s; "
                  f"heartbeats {len(beats)}")
    cloud.stop()


def _pending(cloud: FastCloud) -> int:
    from sqlalchemy import func, select

    with cloud.cloud.store.read() as s:
        return s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.state == "pending")) or 0


def _state(cloud: FastCloud, instance_id: str) -> str:
    with cloud.cloud.store.read() as s:
        row = s.get(models.Instance, instance_id)
        return row.state if row else ""


def _decisions(cloud: FastCloud, zone: str, seconds: float) -> float:
    """`place` for one instance, over and over, for `seconds`: decisions per second."""
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        with cloud.cloud.store.read() as s:
            placement.place(s, cloud.config, cloud.cloud.control_host_id, zone, "t3.nano", 1, 1)
        count += 1
    return count / seconds


if __name__ == "__main__":
    main()
