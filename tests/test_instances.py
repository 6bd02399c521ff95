"""Real instances: launch, SSH in, limits, stop/start keeps the disk, reboot, terminate."""

from __future__ import annotations

import base64
import time

import pytest
from helpers import instance, ssh, wait_state


def test_launch_answers_pending_then_runs_and_accepts_ssh(ec2, launch, key_pair, server):
    res = launch(TagSpecifications=[{"ResourceType": "instance",
                                     "Tags": [{"Key": "Name", "Value": "web"}]}])
    inst = res["Instances"][0]
    assert inst["State"] == {"Code": 0, "Name": "pending"}
    assert inst["PrivateIpAddress"].startswith(server.env["GUREUM_VPC_CIDR"].rsplit(".", 2)[0] + ".")
    assert inst["PublicIpAddress"].startswith("127.")
    assert inst["PrivateDnsName"] == f"ip-{inst['PrivateIpAddress'].replace('.', '-')}.gureum-1.compute.internal"
    assert inst["KeyName"] == key_pair[0]
    assert {"Key": "Name", "Value": "web"} in inst["Tags"]
    running = wait_state(ec2, inst["InstanceId"], "running", timeout=30)
    out = ssh(key_pair[1], running["PublicIpAddress"], "hostname; id -un; sudo -n id -u").stdout.split()
    assert out == [f"ip-{inst['PrivateIpAddress'].replace('.', '-')}", "ec2-user", "0"]


def test_instance_is_isolated_from_the_host(ec2, launch, key_pair):
    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    script = "; ".join([
        "cat /proc/self/uid_map",
        "sudo -n sh -c 'echo 1 > /proc/sys/kernel/sysrq' 2>/dev/null && echo SYSRQ-WRITABLE",
        "sudo -n touch /sys/kernel/x 2>/dev/null && echo SYS-WRITABLE",
        "sudo -n mount -t tmpfs none /mnt 2>/dev/null && echo MOUNT-ALLOWED",
        "sudo -n unshare -U true 2>/dev/null && echo USERNS-ALLOWED",
        "ps -e --no-headers | wc -l",
    ])
    out = ssh(key_pair[1], ip, script).stdout
    uid_map = out.splitlines()[0].split()
    assert uid_map[0] == "0" and int(uid_map[1]) >= 0x4000_0000 and uid_map[2] == "65536"
    for marker in ("SYSRQ-WRITABLE", "SYS-WRITABLE", "MOUNT-ALLOWED", "USERNS-ALLOWED"):
        assert marker not in out
    assert int(out.splitlines()[-1]) < 20  # its own PID namespace: only its own processes


def test_memory_limit_is_enforced(ec2, launch, key_pair):
    inst = launch(InstanceType="t3.nano")["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    # Try to hold 900 MiB in a 512 MiB instance: the kernel's OOM killer must stop it.
    hog = "python3 -c 'b = bytearray(900 * 1024 * 1024); print(\"ALLOCATED\", len(b))'; echo rc=$?"
    out = ssh(key_pair[1], ip, hog, timeout=60).stdout
    assert "ALLOCATED" not in out and "rc=137" in out
    small = ssh(key_pair[1], ip, "python3 -c 'b = bytearray(200 * 1024 * 1024); print(len(b))'").stdout
    assert small.strip() == str(200 * 1024 * 1024)


def test_describe_instance_types_reports_what_is_enforced(ec2, launch, key_pair, server):
    types = {t["InstanceType"]: t for t in ec2.describe_instance_types(
        InstanceTypes=["t3.nano", "t3.small"])["InstanceTypes"]}
    assert types["t3.nano"]["MemoryInfo"]["SizeInMiB"] == 512
    inst = launch(InstanceType="t3.small")["Instances"][0]
    wait_state(ec2, inst["InstanceId"], "running")
    prefix = server.host_objects()["cgroups"][0].rsplit("/", 1)[1]
    base = f"/sys/fs/cgroup/%s/{prefix}/{inst['InstanceId']}/%s"
    with open(base % ("memory", "memory.limit_in_bytes")) as f:
        assert int(f.read()) == types["t3.small"]["MemoryInfo"]["SizeInMiB"] * 1024 * 1024
    with open(base % ("cpu", "cpu.cfs_quota_us")) as f:
        assert int(f.read()) == types["t3.small"]["VCpuInfo"]["DefaultVCpus"] * 100000


def test_disk_has_its_own_size_limit(ec2, launch, key_pair):
    inst = launch(BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}])["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    out = ssh(key_pair[1], ip, "df -B1M --output=size / | tail -1; "
              "dd if=/dev/zero of=/home/ec2-user/fill bs=1M count=1100 2>&1; echo rc=$?",
              timeout=60).stdout
    size_mib = int(out.split()[0])
    assert 900 <= size_mib <= 1024
    assert "No space left on device" in out


def test_stop_start_keeps_disk_and_private_ip_and_reboot_keeps_running(ec2, launch, key_pair):
    inst = launch()["Instances"][0]
    iid = inst["InstanceId"]
    first = wait_state(ec2, iid, "running")
    ssh(key_pair[1], first["PublicIpAddress"], "echo kept > /home/ec2-user/marker")
    stopping = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert stopping["PreviousState"]["Name"] == "running"
    assert stopping["CurrentState"]["Name"] == "stopping"
    stopped = wait_state(ec2, iid, "stopped")
    assert "PublicIpAddress" not in stopped  # released on stop, as on AWS
    assert stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    ec2.start_instances(InstanceIds=[iid])
    again = wait_state(ec2, iid, "running")
    assert again["PrivateIpAddress"] == first["PrivateIpAddress"]
    assert ssh(key_pair[1], again["PublicIpAddress"], "cat /home/ec2-user/marker").stdout.strip() == "kept"
    ec2.reboot_instances(InstanceIds=[iid])
    time.sleep(1.5)
    after = wait_state(ec2, iid, "running")
    out = ssh(key_pair[1], after["PublicIpAddress"], "cat /home/ec2-user/marker").stdout
    assert out.split()[0] == "kept"


def test_shutdown_from_inside_stops_the_instance(ec2, launch, key_pair):
    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    ssh(key_pair[1], ip, "sudo -n kill -TERM 1", check=False)
    stopped = wait_state(ec2, inst["InstanceId"], "stopped", timeout=30)
    assert stopped["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"


def test_terminate_removes_every_host_object(ec2, launch, server):
    inst = launch()["Instances"][0]
    iid = inst["InstanceId"]
    wait_state(ec2, iid, "running")
    objects = server.host_objects()
    assert any(iid in n for n in objects["netns"])
    res = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert res["CurrentState"]["Name"] == "shutting-down"
    terminated = wait_state(ec2, iid, "terminated")
    assert "PublicIpAddress" not in terminated
    objects = server.host_objects()
    for kind, names in objects.items():
        assert not [n for n in names if iid in n], f"{kind} left for {iid}: {names}"
    assert not (server.data_dir / "instances" / iid).exists()


def test_many_in_one_call_get_distinct_addresses(ec2, launch):
    res = launch(MinCount=3, MaxCount=3)
    ids = [i["InstanceId"] for i in res["Instances"]]
    assert [i["AmiLaunchIndex"] for i in res["Instances"]] == [0, 1, 2]
    assert len({i["PrivateIpAddress"] for i in res["Instances"]}) == 3
    assert len({i["PublicIpAddress"] for i in res["Instances"]}) == 3
    for iid in ids:
        wait_state(ec2, iid, "running")


def test_client_token_makes_run_instances_idempotent(ec2, launch, image_id):
    first = launch(ClientToken="token-abc")
    second = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                               KeyName=first["Instances"][0]["KeyName"], ClientToken="token-abc")
    assert first["ReservationId"] == second["ReservationId"]
    assert [i["InstanceId"] for i in first["Instances"]] == [i["InstanceId"] for i in second["Instances"]]
    with pytest.raises(ec2.exceptions.ClientError) as err:
        ec2.run_instances(ImageId=image_id, InstanceType="t3.small", MinCount=1, MaxCount=1,
                          ClientToken="token-abc")
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatch"


def test_console_shows_host_key_fingerprints(ec2, launch, server):
    inst = launch()["Instances"][0]
    wait_state(ec2, inst["InstanceId"], "running")
    console = (server.data_dir / "instances" / inst["InstanceId"] / "console.log").read_text()
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in console
    assert "(ED25519)" in console


def test_user_data_round_trips_through_describe_attribute(ec2, launch):
    script = b"#!/bin/sh\necho hello\n"
    inst = launch(UserData=script.decode())["Instances"][0]
    attr = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]) == script
    assert instance(ec2, inst["InstanceId"])["InstanceId"] == inst["InstanceId"]
