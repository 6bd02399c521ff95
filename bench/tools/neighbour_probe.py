"""Launches next to N idle instances: N t3.nano launched in batches of 50 and running,
SETTLE seconds of quiet, then PROBES sequential launches of one more (RunInstances ->
sshd banner on its public address, then terminate and wait), with each window's start
and end written to MARKS for `passes.py`. Prints the median and every sample.

    python tools/neighbour_probe.py N PROBES MARKS   (from bench/; SETTLE=15 by default)

With `PYTHONPATH=tools/passprobe PASSPROBE_OUT=<file>` the server times its control
loop passes (and with HOSTPROBE=1 the host steps of a launch): see passprobe/.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import bench_server, terminate_all  # noqa: E402
from density import all_running, gone  # noqa: E402

from gureum.testing import ssh_banner, wait_for  # noqa: E402


def main() -> None:
    count, probes, marks = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    quota = str(max(5120, (count + 20) * 8))  # GiB of root disks
    with bench_server("nprobe", max_instances=count + 10,
                      env={"GUREUM_VOLUME_QUOTA_GIB": quota}) as server:
        ec2 = server.client()
        try:
            image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
            launched = 0
            while launched < count:
                n = min(50, count - launched)
                ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=n, MaxCount=n)
                launched += n
                wait_for(lambda: all_running(ec2), 300, interval=0.2)
            time.sleep(float(os.environ.get("SETTLE", "15")))
            latencies = []
            with open(marks, "w") as f:
                for _ in range(probes):
                    t0 = time.monotonic()
                    probe = ec2.run_instances(ImageId=image, InstanceType="t3.nano",
                                              MinCount=1, MaxCount=1)["Instances"][0]
                    wait_for(lambda p=probe: ssh_banner(p["PublicIpAddress"]), 60,
                             interval=0.005)
                    t1 = time.monotonic()
                    latencies.append(t1 - t0)
                    f.write(f"{t0:.4f} {t1:.4f}\n")
                    ec2.terminate_instances(InstanceIds=[probe["InstanceId"]])
                    wait_for(lambda p=probe: gone(ec2, p["InstanceId"]), 60, interval=0.1)
            print("N", count, "median", round(statistics.median(latencies), 3),
                  [round(x, 3) for x in latencies])
        finally:
            terminate_all(ec2)


if __name__ == "__main__":
    main()
