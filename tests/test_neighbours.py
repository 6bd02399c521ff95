"""Per-instance limits on the host's shared resources, read back from the kernel's cgroup
files: applied at launch, on a volume attached to a running instance, after stop/start
and after a restart of the server (the agent with it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from helpers import ssh, wait_for, wait_state
from test_ebs import new_volume, wait_attach

from gureum.agent import firewall
from gureum.agent.runtime import blkio
from gureum.testing_neighbours import cgroup

MIB = 1024 * 1024


def device(path: Path) -> str:
    dev = os.stat(path).st_dev
    return f"{os.major(dev)}:{os.minor(dev)}"


def rules_of(iid: str) -> dict[str, dict[str, int]]:
    return blkio.read(cgroup("blkio", iid))


def expect(rules: dict[str, dict[str, int]], dev: str, iops: int, mibps: int) -> None:
    for stem in ("read_iops", "write_iops"):
        assert rules[stem].get(dev) == iops, (stem, dev, rules)
    for stem in ("read_bps", "write_bps"):
        assert rules[stem].get(dev) == mibps * MIB, (stem, dev, rules)


def cpu_and_memory(iid: str) -> dict[str, str]:
    read = lambda controller, name: (cgroup(controller, iid) / name).read_text().strip()  # noqa: E731
    return {"cpus": read("cpuset", "cpuset.cpus"), "shares": read("cpu", "cpu.shares"),
            "quota": read("cpu", "cpu.cfs_quota_us"), "pids": read("pids", "pids.max"),
            "memory": read("memory", "memory.limit_in_bytes"),
            "memsw": read("memory", "memory.memsw.limit_in_bytes")}


def test_limits_follow_size_and_volume_type_and_stay(ec2, key_pair, image_id, server):  # noqa: ANN001
    inst = ec2.run_instances(
        ImageId=image_id, InstanceType="t2.micro", MinCount=1, MaxCount=1, KeyName=key_pair[0],
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {
            "VolumeSize": 4, "VolumeType": "io1", "Iops": 100}}])["Instances"][0]
    iid = inst["InstanceId"]
    d = server.data_dir / "instances" / iid
    extra = None
    try:
        ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
        sdf = next(m["Ebs"]["VolumeId"] for m in
                   ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
                       "BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf")
        # t2.micro: 1 vCPU of this 2-core host is one core of its own, 1 GiB and no swap.
        limits = cpu_and_memory(iid)
        assert limits["cpus"] in ("0", "1") and limits["shares"] == "1024"
        assert limits["quota"] == "100000" and limits["pids"] == "1024"
        assert limits["memory"] == limits["memsw"] == str(1024 * MIB)
        rules = rules_of(iid)
        expect(rules, device(d / "disk"), 3000, 125)  # the gp3 root disk
        expect(rules, device(d / "vols" / sdf), 100, 25)  # io1 at 100 IOPS: 256 KiB each

        # Direct writes to the io1 volume go at its rate (25 MiB/s), not the host disk's.
        t0 = time.monotonic()
        ssh(key_pair[1], ip, "sudo dd if=/dev/zero of=/mnt/sdf/f bs=1M count=50 oflag=direct "
                             "status=none", timeout=60)
        rate = 50 / (time.monotonic() - t0)
        print(f"direct writes to an io1 volume of 100 IOPS (25 MiB/s): {rate:.1f} MiB/s")
        assert rate < 25 * 1.35

        # A volume attached while it runs gets its own type's limits at once; detached, none.
        extra = new_volume(ec2, Size=8, VolumeType="gp3", Iops=4000, Throughput=250)
        ec2.attach_volume(VolumeId=extra, InstanceId=iid, Device="/dev/sdg")
        wait_attach(ec2, extra, "attached")
        extra_dev = device(d / "vols" / extra)
        expect(rules_of(iid), extra_dev, 4000, 250)
        ec2.detach_volume(VolumeId=extra)
        wait_attach(ec2, extra, None)
        assert all(extra_dev not in rules for rules in rules_of(iid).values())

        # Stop/start: the limits come back on whatever loop devices the disks get now.
        ec2.stop_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "stopped")
        ec2.start_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "running")
        assert cpu_and_memory(iid) == limits
        rules = rules_of(iid)
        expect(rules, device(d / "disk"), 3000, 125)
        expect(rules, device(d / "vols" / sdf), 100, 25)

        # A restart of the server and its agent leaves the running instance's limits be.
        server.stop()
        server.start()
        assert wait_for(lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0][
            "Instances"][0]["State"]["Name"] == "running", 30)
        time.sleep(2)  # a reconcile pass
        assert cpu_and_memory(iid) == limits and rules_of(iid) == rules
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
        if extra is not None:
            assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[extra])["Volumes"][0][
                "State"] == "available", 30)
            ec2.delete_volume(VolumeId=extra)


def test_an_instance_as_large_as_the_host_gets_every_core(ec2, launch):  # noqa: ANN001
    small = launch(InstanceType="t2.nano")["Instances"][0]["InstanceId"]
    big = launch(InstanceType="m5.large")["Instances"][0]["InstanceId"]  # 2 vCPUs
    for iid in (small, big):
        wait_state(ec2, iid, "running")
    every = Path("/sys/fs/cgroup/cpuset/cpuset.cpus").read_text().strip()
    assert cpu_and_memory(big)["cpus"] == (every if len(os.sched_getaffinity(0)) <= 2 else
                                           cpu_and_memory(big)["cpus"])
    assert cpu_and_memory(big)["shares"] == "2048"
    # One vCPU: one core (which one follows its slot, spreading small neighbours).
    assert cpu_and_memory(small)["cpus"].isdigit() or len(os.sched_getaffinity(0)) == 1


HAMMER = """
import http.client, threading, time
ok = [0]
def run(end):
    while time.monotonic() < end:
        c = http.client.HTTPConnection("169.254.169.254", 80, timeout=0.5)
        try:
            c.request("GET", "/latest/meta-data/instance-id"); c.getresponse().read(); ok[0] += 1
        except OSError:
            pass
        finally:
            c.close()
end = time.monotonic() + 3
threads = [threading.Thread(target=run, args=(end,)) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(ok[0] / 3)
"""


def test_an_instance_cannot_flood_the_metadata_service(ec2, launch, key_pair):  # noqa: ANN001
    """The agent answers IMDS and DNS: an instance may send them 1,024 packets a second
    (AWS's limit), at least 5 per HTTP request here (SYN, request, ACK, FIN, ACK)."""
    ip = wait_state(ec2, launch()["Instances"][0]["InstanceId"], "running")["PublicIpAddress"]
    rate = float(ssh(key_pair[1], ip, f"python3 -c '{HAMMER}'", timeout=60).stdout)
    print(f"IMDS requests per second from one instance, 8 threads: {rate:.0f}")
    assert 10 < rate <= firewall.LINK_LOCAL_PPS / 4


def test_instances_cannot_fill_the_hosts_disk(server, launch, ec2):  # noqa: ANN001
    """Every disk is a sparse file of its own size in the volume store, and the store is
    never larger than 90 % of what the host had free when it was made (its 1 TiB default
    is larger than this host's disk)."""
    wait_state(ec2, launch()["Instances"][0]["InstanceId"], "running")
    store = server.data_dir / "volumes.xfs"
    host = os.statvfs(server.data_dir)
    assert store.stat().st_size <= 0.9 * host.f_blocks * host.f_frsize
