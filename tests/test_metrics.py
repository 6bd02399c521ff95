"""CloudWatch's AWS/EC2 metrics are measured on the host: a busy instance shows it."""

from __future__ import annotations

import datetime as dt

from helpers import wait_for, wait_state

BUSY = "#!/bin/sh\nnohup sh -c 'while :; do :; done' >/dev/null 2>&1 &\n"


def test_a_busy_instance_reports_its_cpu(server, ec2, image_id):
    cw = server.client("cloudwatch")
    busy, idle = (ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1, **extra)["Instances"][0]["InstanceId"]
                  for extra in ({"UserData": BUSY}, {}))
    try:
        for iid in (busy, idle):
            wait_state(ec2, iid, "running")
        start = dt.datetime.now(dt.UTC)

        def cpu(iid: str) -> float | None:
            points = cw.get_metric_statistics(
                Namespace="AWS/EC2", MetricName="CPUUtilization",
                Dimensions=[{"Name": "InstanceId", "Value": iid}], StartTime=start,
                EndTime=start + dt.timedelta(minutes=5), Period=300,
                Statistics=["Maximum", "SampleCount"])["Datapoints"]
            return points[0]["Maximum"] if points and points[0]["SampleCount"] >= 2 else None

        # One busy loop on a 2-vCPU type: about 50 %; the idle one stays near 0.
        assert wait_for(lambda: (cpu(busy) or 0) > 35, 30), cpu(busy)
        assert (cpu(idle) or 0) < 10, cpu(idle)
    finally:
        ec2.terminate_instances(InstanceIds=[busy, idle])
        for iid in (busy, idle):
            wait_state(ec2, iid, "terminated")


# After the first measurement (every 2 s in tests): a delta needs a baseline.
WRITER = "#!/bin/sh\nsleep 6\ndd if=/dev/zero of=/var/tmp/blob bs=1M count=16 conv=fsync\n"


def test_disk_writes_and_status_checks_are_measured(server, ec2, image_id):
    cw = server.client("cloudwatch")
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            UserData=WRITER)["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, iid, "running")
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)

        def total(name: str, statistic: str = "Sum") -> float:
            points = cw.get_metric_statistics(
                Namespace="AWS/EC2", MetricName=name,
                Dimensions=[{"Name": "InstanceId", "Value": iid}], StartTime=start,
                EndTime=start + dt.timedelta(minutes=6), Period=360,
                Statistics=[statistic])["Datapoints"]
            return points[0][statistic] if points else -1.0

        # The block device under the instance's disk saw the 16 MiB the instance wrote.
        assert wait_for(lambda: total("DiskWriteBytes") >= 16 * 2**20, 40), total("DiskWriteBytes")
        assert total("DiskWriteOps") > 0
        assert wait_for(lambda: total("StatusCheckFailed", "Maximum") == 0.0, 10)
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
