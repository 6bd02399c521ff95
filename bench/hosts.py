"""VPCs across hosts: instance-to-instance TCP throughput and latency on one host vs
between two hosts over the VPC's VXLAN segment (issue #13; target: cross-host >= 70 % of
same-host throughput on these veths).

Two hosts on this machine as the real tier makes them (tests/test_hosts_join.py's
`running_cluster`: `gureum up` on one end of a veth, a joined agent in a netns on the
other). Four instances of one VPC: three on the control host (two subnets), one on the
joined host; every cross-host path is routed too (a subnet lives in one zone, and each
host here is its own zone), so "same host, two subnets" is its fair baseline.
The same small Python sender/receiver runs inside each instance's network namespace
(`ip netns exec`: its eth0, its firewall), so the numbers compare paths, not tools:
throughput = 1 MiB writes for a few seconds, latency = 1-byte request/response round
trips over one connection, and connection setup time. Median of the runs.

Then, on the same two hosts: launch -> sshd banner of an instance on the joined host vs
on the control host (the banner seen from the host holding the instance, through its
public address), and the host-loss drill of tests/test_host_loss.py: a one-instance Auto
Scaling group serving from the joined host behind a load balancer, the host killed (agent
SIGKILLed, link cut) -> the replacement on the control host serving through the load
balancer (target < 30 s), then the host revived for the next run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import wait_for, wait_state  # noqa: E402
from test_host_loss import web_group  # noqa: E402
from test_hosts_join import Cluster, running_cluster  # noqa: E402

from gureum.config import Config  # noqa: E402

LINK, CONTROL, SECOND = "198.18.82.0/30", "198.18.82.1", "198.18.82.2"
PORT = 5201
SERVER = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
def serve(c):
    kind = c.recv(1)
    if kind == b"t":  # throughput: drain
        while c.recv(1 << 20):
            pass
    elif kind == b"r":  # round trips: echo one byte
        while (b := c.recv(1)):
            c.sendall(b)
    c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""
CLIENT = """
import socket, sys, time, json
host, port, seconds, rtts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
c = socket.create_connection((host, port)); c.sendall(b"t")
buf = bytes(1 << 20); n = 0; t = time.perf_counter()
while time.perf_counter() - t < seconds:
    c.sendall(buf); n += len(buf)
c.shutdown(socket.SHUT_WR); c.recv(1); gbps = n * 8 / (time.perf_counter() - t) / 1e9; c.close()
connects = []
for _ in range(20):
    t0 = time.perf_counter(); socket.create_connection((host, port)).close()
    connects.append(time.perf_counter() - t0)
c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b"r"); out = []
for _ in range(rtts):
    t0 = time.perf_counter(); c.sendall(b"x"); c.recv(1); out.append(time.perf_counter() - t0)
c.close(); out.sort(); connects.sort()
print(json.dumps({"gbps": gbps, "rtt_p50": out[len(out) // 2], "rtt_p99": out[int(len(out) * 0.99)],
                  "connect_p50": connects[len(connects) // 2]}))
"""


BANNER = """
import socket, sys, time
while True:
    try:
        with socket.create_connection((sys.argv[1], 22), timeout=0.05) as s:
            s.settimeout(1)
            if s.recv(4).startswith(b"SSH-"):
                break
    except OSError:
        time.sleep(0.002)
print(time.monotonic())
"""


def launch_to_banner(cluster: Cluster, samples: int) -> dict[str, list[float]]:
    """RunInstances -> sshd banner, on each host, seen from that host (its public address
    lives on that host's loopback range). CLOCK_MONOTONIC is the machine's: the prober's
    stamp and ours compare."""
    ec2 = cluster.server.client()
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = {zone: ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
        {"Name": "availability-zone", "Values": [zone]}])["Subnets"] for zone in
        ("gureum-1a", "gureum-1b")}
    if not subnets["gureum-1b"]:
        subnets["gureum-1b"] = [ec2.create_subnet(
            VpcId=vpc["VpcId"], CidrBlock=vpc["CidrBlock"].replace(".0.0/16", ".48.0/20"),
            AvailabilityZone="gureum-1b")["Subnet"]]
    where = {"control host": ("gureum-1a", []),
             "joined host": ("gureum-1b", ["nsenter", f"--net=/run/netns/{cluster.second.ns}"])}
    out: dict[str, list[float]] = {name: [] for name in where}
    for _ in range(samples):
        for name, (zone, enter) in where.items():
            started = time.monotonic()
            inst = ec2.run_instances(
                ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnets[zone][0]["SubnetId"],
                                    "AssociatePublicIpAddress": True}])["Instances"][0]
            seen = subprocess.run([*enter, sys.executable, "-c", BANNER,
                                   inst["PublicIpAddress"]], capture_output=True, text=True,
                                  timeout=60, check=True).stdout
            out[name].append(float(seen) - started)
            ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
            wait_state(ec2, inst["InstanceId"], "terminated", timeout=60)
    return out


def host_loss(cluster: Cluster, runs: int) -> list[tuple[float, float]]:
    """(lost after, replacement serving after) seconds from the kill, per run."""
    group = web_group(cluster)
    out = []
    try:
        for _ in range(runs):
            assert wait_for(lambda: group.served_by("gureum-1b"), 120), group.members()
            doomed = next(iter(group.members()))
            killed_at = group.kill_joined_host()
            assert wait_for(lambda: cluster.hosts()["host2"]["state"] == "lost", 60)
            lost = time.monotonic() - killed_at
            assert wait_for(lambda d=doomed: group.served_by("gureum-1a", not_by=d), 120,
                            interval=0.1), group.members()
            out.append((lost, time.monotonic() - killed_at))
            group.revive_joined_host()
            assert wait_for(lambda: cluster.hosts()["host2"]["state"] == "active", 60)
            # The next member goes to the joined host again (its zone comes first).
            group.asg.terminate_instance_in_auto_scaling_group(
                InstanceId=next(iter(group.members())), ShouldDecrementDesiredCapacity=False)
    finally:
        group.remove()
    return out


def main() -> int:
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rtts", type=int, default=2000)
    parser.add_argument("--launches", type=int, default=5, help="launches per host")
    args = parser.parse_args()
    made = running_cluster(LINK, CONTROL, SECOND)
    cluster = next(made)
    try:
        ec2 = cluster.server.client()
        image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
        vpc = ec2.create_vpc(CidrBlock="10.82.0.0/16")["Vpc"]["VpcId"]
        subnets = {zone: ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)[
            "Subnet"]["SubnetId"] for zone, cidr in (("gureum-1a", "10.82.1.0/24"),
                                                      ("gureum-1b", "10.82.2.0/24"))}
        # Another subnet on the control host: a same-host path through the router, as
        # every cross-host path here is (a zone is a host, a subnet is in one zone).
        routed = ec2.create_subnet(VpcId=vpc, CidrBlock="10.82.3.0/24",
                                   AvailabilityZone="gureum-1a")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="bench", Description="the VPC",
                                          VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.82.0.0/16"}]}])
        prefixes = {"gureum-1a": Config(data_dir=cluster.server.data_dir).prefix,
                    "gureum-1b": Config(data_dir=cluster.agent.data_dir).prefix}
        ids = []
        for subnet in (subnets["gureum-1a"], subnets["gureum-1a"], subnets["gureum-1b"], routed):
            ids += [i["InstanceId"] for i in ec2.run_instances(
                ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                SubnetId=subnet, SecurityGroupIds=[group])["Instances"]]
        views = [wait_state(ec2, i, "running", timeout=90) for i in ids]
        netns = [f"{prefixes[v['Placement']['AvailabilityZone']]}-{v['InstanceId']}" for v in views]
        ips = [v["PrivateIpAddress"] for v in views]
        servers = [subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", SERVER, str(PORT)])
                   for ns in netns]
        try:
            time.sleep(0.5)
            paths = {"same host, one subnet": (0, 1), "same host, two subnets (routed)": (0, 3),
                     "cross host (control -> joined, routed)": (0, 2),
                     "cross host (joined -> control, routed)": (2, 1)}
            results: dict[str, list[dict]] = {name: [] for name in paths}
            for _ in range(args.runs):
                for name, (src, dst) in paths.items():
                    out = subprocess.run(
                        ["ip", "netns", "exec", netns[src], "python3", "-c", CLIENT, ips[dst],
                         str(PORT), str(args.seconds), str(args.rtts)],
                        capture_output=True, text=True, timeout=120, check=True).stdout
                    results[name].append(json.loads(out))
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(10)
            ec2.terminate_instances(InstanceIds=ids)
            for i in ids:
                wait_state(ec2, i, "terminated", timeout=60)
        load = Path("/proc/loadavg").read_text().split()[:3]
        table = Table(title=f"Instance to instance, one VPC ({args.runs} runs, median; "
                            f"load average {' '.join(load)}: under load)")
        for column in ("path", "TCP Gbit/s", "vs same host", "RTT p50 ms", "RTT p99 ms",
                       "connect p50 ms"):
            table.add_column(column, justify="left" if column == "path" else "right")
        base = statistics.median(r["gbps"] for r in results["same host, one subnet"])
        for name, runs in results.items():
            gbps = statistics.median(r["gbps"] for r in runs)
            table.add_row(name, f"{gbps:.2f}", f"{gbps / base:.0%}",
                          f"{statistics.median(r['rtt_p50'] for r in runs) * 1e3:.3f}",
                          f"{statistics.median(r['rtt_p99'] for r in runs) * 1e3:.3f}",
                          f"{statistics.median(r['connect_p50'] for r in runs) * 1e3:.3f}")
        console.print(table)

        launches = launch_to_banner(cluster, args.launches)
        table = Table(title=f"Launch -> sshd banner ({args.launches} per host, median)")
        for column in ("host", "p50 s", "min s", "max s"):
            table.add_column(column, justify="left" if column == "host" else "right")
        for name, times in launches.items():
            table.add_row(name, f"{statistics.median(times):.3f}", f"{min(times):.3f}",
                          f"{max(times):.3f}")
        console.print(table)

        drills = host_loss(cluster, args.runs)
        table = Table(title=f"Host loss -> Auto Scaling replacement serving ({args.runs} runs; "
                            "target < 30 s)")
        for column in ("measure", "median s", "min s", "max s"):
            table.add_column(column, justify="left" if column == "measure" else "right")
        for label, index in (("host marked lost", 0), ("replacement serving via the ALB", 1)):
            values = [d[index] for d in drills]
            table.add_row(label, f"{statistics.median(values):.1f}", f"{min(values):.1f}",
                          f"{max(values):.1f}")
        console.print(table)
    finally:
        next(made, None)  # both hosts stopped and proven clean
    return 0


if __name__ == "__main__":
    sys.exit(main())
