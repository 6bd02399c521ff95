"""API throughput: the same boto3 workload against gureum and moto's server, side by side.

DescribeInstances with 10, 200 and 1,000 instances present, CreateTags, and the
RunInstances answer time. "gureum server share" is the part of gureum's round trip spent
in its server (checking, parsing, handler, serializing: the Server-Timing header of each
answer) against the whole call as boto3 makes it (signing, the wire, parsing the XML). gureum's extra instances are inserted into its store as
*stopped* instances (real rows, no containers: launching 1,000 real machines is the
density benchmark's job); moto's are made with RunInstances (moto makes no machines).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from common import bench_server, console, pct, terminate_all
from rich.table import Table

from gureum.testing import free_port, wait_for


def timed(fn, reps: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


SERVER_SECONDS: list[float] = []  # Server-Timing of each gureum answer, in order


def record_server_time(http_response, **_: object) -> None:  # noqa: ANN001
    timing = http_response.headers.get("Server-Timing", "")
    if timing.startswith("app;dur="):
        SERVER_SECONDS.append(float(timing.split("=", 1)[1]) / 1000)


def timed_pair(ours, peer, reps: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """Alternate the two calls, so a noisy neighbour on this shared machine slows both
    sides alike instead of whichever happened to run at that moment."""
    a, b = [], []
    for _ in range(reps):
        a += timed(ours, 1)
        b += timed(peer, 1)
    return a, b


def seed_stopped(data_dir: Path, access_key: str, image_id: str, count: int, vpc_cidr: str) -> None:
    from gureum.cloud import Cloud
    from gureum.config import Config
    from gureum.services.ec2 import allocation, ids
    from gureum.store import models

    cfg = Config(data_dir=data_dir)
    cfg.vpc_cidr, cfg.subnet_cidr = vpc_cidr, vpc_cidr
    cloud = Cloud(cfg, with_agent=False)
    account = cloud.account_for(access_key)
    cloud.ensure_default_network(account)
    with cloud.store.write() as s:
        res = models.Reservation(reservation_id=ids.new("r"), account_id=account)
        s.add(res)
        s.flush()
        slots = allocation.free_slots(s)
        ips = allocation.free_private_ips(s, cloud.default_vpc_id(account), cfg.subnet_cidr)
        for i in range(count):
            iid = ids.new("i")
            s.add(models.Instance(
                instance_id=iid, account_id=account, reservation_id=res.reservation_id,
                ami_launch_index=i, image_id=image_id, instance_type="t3.micro", state="stopped",
                desired_state="stopped", slot=next(slots), private_ip=next(ips),
                vpc_id=cloud.default_vpc_id(account), subnet_id=cloud.default_subnet_id(account),
                availability_zone=cloud.availability_zone,
                security_group_ids=[cloud.default_group_id(account)]))
            s.flush()
            s.add(models.Tag(resource_id=iid, key="Name", value=f"bench-{i}", account_id=account,
                             resource_type="instance"))


def describe_all(ec2) -> int:  # noqa: ANN001
    return sum(len(r["Instances"]) for page in ec2.get_paginator("describe_instances").paginate()
               for r in page["Reservations"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="10,200,1000")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    port = free_port()
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(port), 30)
        moto_ec2 = boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        moto_image = moto_ec2.describe_images()["Images"][0]["ImageId"]
        results: list[tuple[str, list[float], list[float]]] = []
        with bench_server("api", max_instances=max(levels) + 100) as server:
            ec2 = server.client()
            ec2.meta.events.register("after-call.ec2.DescribeInstances", record_server_time)
            shares: dict[int, float] = {}
            image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
            access, _ = server.credentials()
            have = 0
            for level in levels:
                seed_stopped(server.data_dir, access, image, level - have, server.env["GUREUM_VPC_CIDR"])
                moto_ec2.run_instances(ImageId=moto_image, MinCount=level - have, MaxCount=level - have)
                have = level
                assert describe_all(ec2) == level and describe_all(moto_ec2) == level
                SERVER_SECONDS.clear()
                pair = timed_pair(lambda: describe_all(ec2), lambda: describe_all(moto_ec2), args.reps)
                shares[len(results)] = sum(SERVER_SECONDS) / sum(pair[0])
                results.append((f"DescribeInstances, {level} instances", *pair))
            one = ec2.describe_instances(MaxResults=5)["Reservations"][0]["Instances"][0]["InstanceId"]
            moto_one = moto_ec2.describe_instances(MaxResults=5)["Reservations"][0]["Instances"][0]["InstanceId"]
            results.append(("CreateTags", *timed_pair(
                lambda: ec2.create_tags(Resources=[one], Tags=[{"Key": "k", "Value": "v"}]),
                lambda: moto_ec2.create_tags(Resources=[moto_one], Tags=[{"Key": "k", "Value": "v"}]),
                args.reps * 5)))
            results.append(("RunInstances answer (gureum: a real machine)", timed(
                lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.nano"), 10),
                timed(lambda: moto_ec2.run_instances(ImageId=moto_image, MinCount=1, MaxCount=1), 10)))
            terminate_all(ec2)
    finally:
        moto.terminate()
        moto.wait()
    table = Table(title="API: gureum vs moto server (same boto3 workload, one client)")
    for col in ("workload", "gureum ops/s", "gureum p50 ms", "gureum p99 ms", "moto ops/s",
                "moto p50 ms", "moto p99 ms", "throughput gureum/moto", "gureum server share"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for row, (name, g, m) in enumerate(results):
        g_ops, m_ops = 1 / statistics.mean(g), 1 / statistics.mean(m)
        table.add_row(name, f"{g_ops:.1f}", f"{statistics.median(g) * 1000:.1f}",
                      f"{pct(g, 0.99) * 1000:.1f}", f"{m_ops:.1f}", f"{statistics.median(m) * 1000:.1f}",
                      f"{pct(m, 0.99) * 1000:.1f}", f"{g_ops / m_ops:.2f}x",
                      f"{shares[row]:.0%}" if row in shares else "")
    console.print(table)
    return 0


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
