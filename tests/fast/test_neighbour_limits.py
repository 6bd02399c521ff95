"""The limits an instance gets on the host's shared resources, computed per instance type
and volume type (pure functions), and carried from the API to the agent's InstanceSpec."""

from __future__ import annotations

from pathlib import Path

import pytest

from gureum.agent.contract import IoLimits, Limits
from gureum.agent.runtime import blkio, cpu, oci_spec
from gureum.agent.runtime.base import ContainerSpec
from gureum.services.ec2 import volume_io
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state

MIB = 1024 * 1024


@pytest.mark.parametrize(("kind", "size", "iops", "throughput", "expected"), [
    ("gp3", 8, 3000, 125, (3000, 125)),  # AWS's gp3 baseline
    ("gp3", 100, 16000, 1000, (16000, 1000)),  # provisioned
    ("gp2", 8, 100, None, (3000, 128)),  # small gp2 bursts to 3,000
    ("gp2", 2000, 6000, None, (6000, 250)),  # beyond 1 TiB: its 3 IOPS/GiB baseline
    ("io1", 4, 100, None, (100, 25)),  # 256 KiB per provisioned I/O
    ("io1", 1000, 64000, None, (64000, 1000)),  # io1's ceiling
    ("io2", 1000, 64000, None, (64000, 4000)),
    ("st1", 2048, None, None, (500, 500)),
    ("st1", 125, None, None, (500, 30)),
    ("sc1", 1024, None, None, (250, 80)),
    ("standard", 8, None, None, (200, 90)),
])
def test_aws_rate_per_volume_type(kind, size, iops, throughput, expected) -> None:  # noqa: ANN001
    assert volume_io.aws_rate(kind, size, iops, throughput) == expected


def test_scale_and_its_floors() -> None:
    assert volume_io.io_limits("gp3", 8, 3000, 125, 1) == IoLimits(3000, 125 * MIB)
    assert volume_io.io_limits("gp3", 8, 3000, 125, 0.5) == IoLimits(1500, 62 * MIB + MIB // 2)
    # Never 0 (the kernel reads 0 as "no limit"), and 0 as the scale turns throttling off.
    assert volume_io.io_limits("sc1", 125, None, None, 0.001) == IoLimits(
        volume_io.MIN_IOPS, volume_io.MIN_BYTES_PER_SECOND)
    assert volume_io.io_limits("gp3", 8, 3000, 125, 0) is None


def test_cpu_weight_and_cores_by_size() -> None:
    assert [cpu.shares(CATALOGUE[t].vcpus) for t in ("t2.micro", "t3.micro", "m5.xlarge")] \
        == [1024, 2048, 4096]
    # Smaller than the host: as many cores as vCPUs, neighbouring slots on other cores.
    assert [cpu.cpuset(1, slot, [0, 1]) for slot in range(4)] == ["0", "1", "0", "1"]
    assert [cpu.cpuset(2, slot, [0, 1, 2, 3]) for slot in range(3)] == ["0,1", "2,3", "0,1"]
    assert cpu.cpuset(1, 5, [2, 3, 6]) == "6"
    # As large as the host or larger: every core (None).
    assert cpu.cpuset(2, 0, [0, 1]) is None and cpu.cpuset(8, 3, [0, 1]) is None


def test_pids_and_memory_by_type() -> None:
    assert CATALOGUE["t2.micro"].limits == Limits(vcpus=1, memory_mib=1024, pids=1024)
    assert CATALOGUE["m5.xlarge"].limits.pids == 16384


def _spec(tmp_path: Path, **kwargs) -> ContainerSpec:  # noqa: ANN003
    return ContainerSpec(name="x", bundle=tmp_path, rootfs=tmp_path, hostname="h",
                         netns_path=tmp_path, uid_base=100000,
                         limits=Limits(vcpus=1, memory_mib=1024, pids=1024), cgroup_path="/p/x",
                         console_log=tmp_path / "c", boot_dir=tmp_path, **kwargs)


def test_oci_resources_carry_every_limit(tmp_path: Path) -> None:
    disks = (blkio.DiskThrottle(7, 3, IoLimits(3000, 125 * MIB)),
             blkio.DiskThrottle(7, 9, IoLimits(100, 25 * MIB)))
    resources = oci_spec.build(_spec(tmp_path, cpus="1", disks=disks))["linux"]["resources"]
    assert resources["cpu"] == {"quota": 100000, "period": 100000, "shares": 1024, "cpus": "1"}
    assert resources["memory"]["limit"] == 1024 * MIB
    if oci_spec.SWAP_ACCOUNTING.exists():
        assert resources["memory"]["swap"] == 1024 * MIB  # memory+swap = memory: no swap
    assert resources["pids"] == {"limit": 1024}
    io = resources["blockIO"]
    assert io["throttleWriteIOPSDevice"] == [{"major": 7, "minor": 3, "rate": 3000},
                                             {"major": 7, "minor": 9, "rate": 100}]
    assert io["throttleReadBpsDevice"][1] == {"major": 7, "minor": 9, "rate": 25 * MIB}
    plain = oci_spec.build(_spec(tmp_path))["linux"]["resources"]
    assert "blockIO" not in plain and "cpus" not in plain["cpu"]


def test_blkio_files_written_and_cleared(tmp_path: Path) -> None:
    """The file format the kernel takes and gives back ("MAJ:MIN rate" per line)."""
    disk = blkio.DiskThrottle(7, 4, IoLimits(100, 25 * MIB))
    blkio.apply(tmp_path, disk)
    assert (tmp_path / "blkio.throttle.write_iops_device").read_text() == "7:4 100"
    assert blkio.read(tmp_path)["read_bps"] == {"7:4": 25 * MIB}
    blkio.clear(tmp_path, (7, 4))
    assert (tmp_path / "blkio.throttle.read_iops_device").read_text() == "7:4 0"


def test_the_agent_is_told_each_disks_limits(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t2.micro",
                            BlockDeviceMappings=[
                                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeType": "gp2"}},
                                {"DeviceName": "/dev/sdf", "Ebs": {
                                    "VolumeSize": 4, "VolumeType": "io1", "Iops": 200}}])[
        "Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, iid, "running")
        spec = fast.agent.last_spec[iid]
        assert spec.limits == CATALOGUE["t2.micro"].limits
        assert spec.root_io == IoLimits(3000, 128 * MIB)  # gp2, 8 GiB: its burst rate
        assert [v.io for v in spec.volumes] == [IoLimits(200, 50 * MIB)]
        vid = ec2.create_volume(AvailabilityZone="gureum-1a", Size=10, VolumeType="gp3",
                                Throughput=300)["VolumeId"]
        assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"]
                        == "available", 10)
        ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdg")
        assert wait_for(lambda: vid in fast.agent.attached, 10)
        assert fast.agent.attached[vid].io == IoLimits(3000, 300 * MIB)
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
