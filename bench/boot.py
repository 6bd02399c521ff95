"""Boot-to-service latency: RunInstances with a user-data script that starts an HTTP
server on :8080, until that server answers on the instance's public IP.

Target: under 1.5 s at p50.
"""

from __future__ import annotations

import argparse
import time
import urllib.request

from common import bench_server, console, key_and_image, latency_table, terminate_all

from gureum.testing import wait_for

USER_DATA = """#!/bin/bash
mkdir -p /srv && echo ok > /srv/index.html
cd /srv && nohup python3 -m http.server 8080 >/dev/null 2>&1 &
"""


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.3) as resp:  # noqa: S310 (loopback only)
            return resp.status == 200
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    with bench_server("boot") as server:
        ec2 = server.client()
        _, image = key_and_image(ec2, server)
        web = ec2.create_security_group(GroupName="bench-web", Description="8080")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        latencies = []
        for _ in range(args.samples):
            t0 = time.monotonic()
            inst = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1,
                                     MaxCount=1, UserData=USER_DATA,
                                     SecurityGroupIds=[web])["Instances"][0]
            url = f"http://{inst['PublicIpAddress']}:8080/"
            if not wait_for(lambda u=url: answers(u), 30, interval=0.005):
                raise SystemExit(f"{inst['InstanceId']}: server never answered")
            latencies.append(time.monotonic() - t0)
            ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
        console.print(latency_table("gureum boot: RunInstances -> user-data HTTP server answers",
                                    {"launch -> :8080 answers on public IP": latencies}))
        terminate_all(ec2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
