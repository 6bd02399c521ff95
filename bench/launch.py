"""Launch latency: RunInstances -> SSH-ready, one at a time and 20 in one call.

SSH-ready means a real `ssh ec2-user@<public ip> true` succeeded (not just an open port).
Prints a table; `--json FILE` also writes the numbers. Starts its own server.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gureum.testing import SSH_OPTS, Server, wait_for  # noqa: E402


def banner(ip: str) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=0.05) as s:
            s.settimeout(0.5)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def ssh_ok(key: Path, ip: str) -> bool:
    cmd = ["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{ip}", "true"]
    return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0


def until_ssh(key: Path, ip: str, start: float) -> tuple[float, float]:
    """Seconds from `start` to the sshd banner and to a completed login."""
    wait_for(lambda: banner(ip), 60, interval=0.005)
    t_banner = time.monotonic() - start
    wait_for(lambda: ssh_ok(key, ip), 60, interval=0.01)
    return t_banner, time.monotonic() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args()

    data_dir = Path(f"/var/tmp/gureum-bench-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    server = Server(data_dir)
    server.env["GUREUM_MAX_INSTANCES"] = str(max(64, args.batch + 5))
    server.start()
    ec2 = server.client()
    console = Console()
    try:
        image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
        key = data_dir / "bench.pem"
        key.write_text(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
        key.chmod(0o600)

        answer, to_banner, to_login = [], [], []
        for _ in range(args.samples):
            t0 = time.monotonic()
            inst = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                     KeyName="bench")["Instances"][0]
            answer.append(time.monotonic() - t0)
            b, s = until_ssh(key, inst["PublicIpAddress"], t0)
            to_banner.append(b)
            to_login.append(s)
            ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
        wait_for(lambda: not [i for r in ec2.describe_instances(Filters=[{
            "Name": "instance-state-name", "Values": ["shutting-down"]}])["Reservations"]
            for i in r["Instances"]], 60)

        t0 = time.monotonic()
        res = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=args.batch,
                                MaxCount=args.batch, KeyName="bench")
        batch_answer = time.monotonic() - t0
        ips = [i["PublicIpAddress"] for i in res["Instances"]]
        with ThreadPoolExecutor(8) as pool:
            per = list(pool.map(lambda ip: until_ssh(key, ip, t0)[1], ips))
        batch_wall = max(per)
        ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in res["Instances"]])

        table = Table(title=f"gureum launch latency ({args.samples} sequential, {args.batch} in one call)")
        for col in ("measure", "p50 (s)", "p95 (s)", "min (s)", "max (s)"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        rows = {
            "RunInstances answer": answer,
            "RunInstances -> sshd banner": to_banner,
            "RunInstances -> ssh login ok": to_login,
            f"batch of {args.batch}: each -> ssh login ok": per,
        }
        for name, values in rows.items():
            table.add_row(name, f"{statistics.median(values):.3f}", f"{pct(values, 0.95):.3f}",
                          f"{min(values):.3f}", f"{max(values):.3f}")
        table.add_row(f"batch of {args.batch}: wall until all ssh ok", f"{batch_wall:.3f}", "", "", "")
        table.add_row(f"batch of {args.batch}: RunInstances answer", f"{batch_answer:.3f}", "", "", "")
        console.print(table)
        console.print("peer reference: bare `runc create` -> ssh hostname floor measured in "
                      "DESIGN.md: 0.266 s (baked host keys)")
        if args.json:
            Path(args.json).write_text(json.dumps({k: v for k, v in rows.items()} | {
                "batch_wall": batch_wall, "batch_answer": batch_answer}, indent=2))
        wait_for(lambda: all(i["State"]["Name"] == "terminated" for r in
                             ec2.describe_instances()["Reservations"] for i in r["Instances"]), 120)
    finally:
        server.stop()
    leftovers = {k: v for k, v in server.host_objects().items() if v}
    if leftovers:
        console.print(f"[red]host objects leaked: {leftovers}[/]")
        return 1
    shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
