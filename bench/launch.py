"""Launch latency: RunInstances -> SSH-ready, one at a time and 20 in one call.

SSH-ready means a real `ssh ec2-user@<public ip> true` succeeded (not just an open port).
Peer: the bare-runc floor measured in DESIGN.md (no other peer runs real machines here).
`--image systemd` measures the image with systemd as init, `--image both` the two side by
side. `--batch 20,100`: one RunInstances call per size (0 skips them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import (
    bench_server,
    console,
    image_named,
    key_and_image,
    latency_table,
    terminate_all,
)

from gureum.testing import SSH_OPTS, ssh_banner, wait_for


def ssh_ok(key: Path, ip: str) -> bool:
    cmd = ["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{ip}", "true"]
    return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0


def until_ssh(key: Path, ip: str, start: float) -> tuple[float, float]:
    """Seconds from `start` to the sshd banner and to a completed login."""
    wait_for(lambda: ssh_banner(ip), 60, interval=0.005)
    t_banner = time.monotonic() - start
    wait_for(lambda: ssh_ok(key, ip), 60, interval=0.01)
    return t_banner, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--batch", default="20,100",
                        help="instances per RunInstances call, comma-separated (0: none)")
    parser.add_argument("--image", choices=("default", "systemd", "both"), default="default")
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args()
    kinds = ["default", "systemd"] if args.image == "both" else [args.image]
    batches = [int(n) for n in args.batch.split(",") if int(n) > 0]
    with bench_server("launch", max_instances=max([64, *(n + 5 for n in batches)])) as server:
        ec2 = server.client()
        key, _ = key_and_image(ec2, server)
        rows: dict[str, list[float]] = {}
        extra: dict[str, float] = {}
        for kind in kinds:
            label = "" if args.image == "default" else f"{kind}: "
            image = image_named(ec2, kind)
            answer, to_banner, to_login = [], [], []
            for _ in range(args.samples):
                t0 = time.monotonic()
                inst = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1,
                                         MaxCount=1, KeyName="bench")["Instances"][0]
                answer.append(time.monotonic() - t0)
                b, s = until_ssh(key, inst["PublicIpAddress"], t0)
                to_banner.append(b)
                to_login.append(s)
                ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
            terminate_all(ec2)
            if args.samples > 0:
                rows.update({f"{label}RunInstances answer": answer,
                             f"{label}RunInstances -> sshd banner": to_banner,
                             f"{label}RunInstances -> ssh login ok": to_login})
            for batch in batches:
                t0 = time.monotonic()
                res = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=batch,
                                        MaxCount=batch, KeyName="bench")
                batch_answer = time.monotonic() - t0
                # As many clients as a person with a script would run: each instance is
                # logged into once its sshd answers, 20 logins at a time.
                with ThreadPoolExecutor(min(batch, 20)) as pool:
                    per = list(pool.map(lambda i, t0=t0: until_ssh(key, i["PublicIpAddress"], t0)[1],
                                        res["Instances"]))
                rows[f"{label}batch of {batch}: each -> ssh login ok"] = per
                extra[f"{label}batch of {batch}: wall until all ssh ok"] = max(per)
                extra[f"{label}batch of {batch}: RunInstances answer"] = batch_answer
                terminate_all(ec2)
        extra["peer: bare runc create -> ssh (DESIGN.md)"] = 0.266
        console.print(latency_table("gureum launch latency", rows, extra))
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows, "extra": extra}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
