"""The systemd image: systemd as PID 1, services enabled with systemctl come back after a
reboot (from the API or from inside) and after stop/start, journald works, user data
runs as a oneshot unit, and a shutdown inside stops the instance as on EC2."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from helpers import instance, ssh, wait_for, wait_state
from test_containment import ATTEMPTS

WEB_UNIT = """[Unit]
Description=test web server
After=network.target

[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""
USER_DATA = "#!/bin/bash\necho user-data-ran > /srv/ran\necho user-data says hello\n"


@pytest.fixture(scope="module")
def systemd_image_id(ec2) -> str:  # noqa: ANN001
    images = ec2.describe_images(Owners=["gureum"])["Images"]
    found = [i for i in images if "-systemd-" in i["Name"]]
    assert found, f"no systemd image among {[i['Name'] for i in images]}"
    assert "systemd" in found[0]["Description"]
    return found[0]["ImageId"]


@pytest.fixture(scope="module")
def box(ec2, systemd_image_id, key_pair) -> Iterator[str]:  # noqa: ANN001
    """One instance of the systemd image for the module, terminated at its end."""
    res = ec2.run_instances(ImageId=systemd_image_id, InstanceType="t3.micro", MinCount=1,
                            MaxCount=1, KeyName=key_pair[0], UserData=USER_DATA)
    instance_id = res["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, instance_id, "running")
        yield instance_id
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_state(ec2, instance_id, "terminated")


def run(ec2, key_pair, instance_id: str, command: str, check: bool = True) -> str:  # noqa: ANN001
    address = wait_state(ec2, instance_id, "running")["PublicIpAddress"]
    return ssh(key_pair[1], address, command, check=check).stdout


def booted(ec2, key_pair, instance_id: str) -> str:  # noqa: ANN001
    """Waits until systemd finished booting; returns `systemctl is-system-running`."""
    return run(ec2, key_pair, instance_id,
               "timeout 20 systemctl is-system-running --wait", check=False).strip()


def serving(ec2, key_pair, instance_id: str) -> bool:  # noqa: ANN001
    return "ok" in run(ec2, key_pair, instance_id,
                       "systemctl is-active web.service && curl -fsS -m 5 localhost:8080/ok",
                       check=False)


def test_boots_systemd_running_with_no_failed_unit(ec2, key_pair, box):  # noqa: ANN001
    assert booted(ec2, key_pair, box) == "running"
    out = run(ec2, key_pair, box, "cat /proc/1/comm; systemctl --failed --no-legend | wc -l; "
              "cat /etc/machine-id; hostname; systemctl is-active ssh.service").split()
    assert out[0] == "systemd"
    assert out[1] == "0"
    assert len(out[2]) == 32 and int(out[2], 16)
    assert out[3] == instance(ec2, box)["PrivateDnsName"].split(".")[0]
    assert out[4] == "active"
    # Its netns belongs to its own user namespace, yet its root cannot change it.
    out = run(ec2, key_pair, box, "sudo ip addr add 10.9.9.9/32 dev eth0 2>&1; "
              "sudo ip link set eth0 down 2>&1; ip -brief addr show eth0", check=False)
    assert "Operation not permitted" in out and "UP" in out and "10.9.9.9" not in out


def test_escape_attempts_fail(ec2, key_pair, box):  # noqa: ANN001
    """What the default image refuses, and what systemd's set-up could open: its cgroup
    limits, other cgroups, mounts."""
    out = {name: run(ec2, key_pair, box, cmd, check=False) for name, cmd in ATTEMPTS.items()}
    assert "Operation not permitted" in out["load kernel code"], out
    assert out["raw block devices"].strip() == "none", out
    assert out["disk images of others"].strip() == "searched", out
    assert "Operation not permitted" in out["bpf"], out
    cgroups = run(ec2, key_pair, box, (
        "cat /proc/1/cgroup | grep memory; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "echo 1 | sudo tee /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1 >/dev/null; "
        "echo 100000 | sudo tee /sys/fs/cgroup/pids/pids.max 2>&1 >/dev/null; "
        "sudo mount -t tmpfs x /mnt 2>&1 | head -1; ls /sys/fs/cgroup/memory | grep -c '^gr'"),
        check=False).splitlines()
    assert cgroups[0].endswith("memory:/"), cgroups  # its own cgroup namespace
    assert int(cgroups[1]) == 1024 * 1024 * 1024, cgroups  # t3.micro's limit, unchanged
    assert "Read-only file system" in cgroups[2] and "Read-only file system" in cgroups[3]
    assert "permission denied" in cgroups[4].lower(), cgroups
    assert cgroups[5] == "0", cgroups  # no other instance's cgroup in sight


def test_user_data_runs_as_a_unit(ec2, key_pair, box):  # noqa: ANN001
    assert booted(ec2, key_pair, box) == "running"
    assert run(ec2, key_pair, box, "cat /srv/ran").strip() == "user-data-ran"
    journal = run(ec2, key_pair, box, "sudo journalctl -u gureum-userdata --no-pager")
    assert "user-data says hello" in journal
    assert "finished with status 0" in journal


def test_enabled_service_comes_back_after_reboot_and_stop_start(ec2, key_pair, box):  # noqa: ANN001
    run(ec2, key_pair, box, f"echo ok | sudo tee /srv/ok >/dev/null; "
        f"printf '%s' '{WEB_UNIT}' | sudo tee /etc/systemd/system/web.service >/dev/null; "
        "sudo systemctl enable --now web.service")
    assert wait_for(lambda: serving(ec2, key_pair, box), 15)
    journal = run(ec2, key_pair, box, "sudo journalctl -u web.service --no-pager")
    assert "GET /ok" in journal  # http.server logs each request to stderr: the journal

    ec2.reboot_instances(InstanceIds=[box])
    assert wait_for(lambda: serving(ec2, key_pair, box), 60)
    assert booted(ec2, key_pair, box) == "running"

    ec2.stop_instances(InstanceIds=[box])
    wait_state(ec2, box, "stopped")
    ec2.start_instances(InstanceIds=[box])
    wait_state(ec2, box, "running")
    assert wait_for(lambda: serving(ec2, key_pair, box), 60)
    assert booted(ec2, key_pair, box) == "running"


def test_reboot_inside_boots_again_and_stays_running(ec2, key_pair, box):  # noqa: ANN001
    marker = secrets.token_hex(4)
    run(ec2, key_pair, box, f"sudo touch /run/{marker}")  # /run is a tmpfs: gone at boot
    run(ec2, key_pair, box, "sudo systemctl reboot", check=False)
    states: set[str] = set()

    def rebooted() -> bool:
        states.add(instance(ec2, box)["State"]["Name"])
        return run(ec2, key_pair, box, f"test -e /run/{marker} || echo fresh",
                   check=False).strip() == "fresh"

    assert wait_for(rebooted, 60, interval=0.5)
    assert states == {"running"}
    assert booted(ec2, key_pair, box) == "running"
    assert wait_for(lambda: serving(ec2, key_pair, box), 30)


def test_shutdown_inside_stops_the_instance(ec2, key_pair, box):  # noqa: ANN001
    run(ec2, key_pair, box, "sudo shutdown -h now", check=False)
    stopped = wait_state(ec2, box, "stopped")
    assert stopped["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    ec2.start_instances(InstanceIds=[box])
    wait_state(ec2, box, "running")
    assert wait_for(lambda: serving(ec2, key_pair, box), 60)


def test_an_image_of_a_configured_systemd_instance_serves_at_boot(
        ec2, systemd_image_id, key_pair) -> None:  # noqa: ANN001
    """CreateImage without NoReboot (the instance reboots, as on EC2) of an instance with
    an app's files and an enabled unit: a new instance of the image serves at boot."""
    web = ec2.create_security_group(GroupName=f"t-sd-img-{secrets.token_hex(2)}",
                                    Description="8080")["GroupId"]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    made: list[str] = []
    try:
        base = ec2.run_instances(ImageId=systemd_image_id, InstanceType="t3.micro", MinCount=1,
                                 MaxCount=1, KeyName=key_pair[0],
                                 SecurityGroupIds=[default, web])["Instances"][0]["InstanceId"]
        made.append(base)
        assert booted(ec2, key_pair, base) == "running"
        unit = WEB_UNIT.replace("--directory /srv", "--directory /opt/app")
        run(ec2, key_pair, base,
            "sudo mkdir -p /opt/app && echo from-the-image | sudo tee /opt/app/index.html "
            f">/dev/null && printf '{unit}' | sudo tee /etc/systemd/system/app.service "
            ">/dev/null && sudo systemctl enable app.service 2>&1")
        started = run(ec2, key_pair, base, "stat -c %Z /proc/1").strip()
        image = ec2.create_image(InstanceId=base, Name=f"t-sd-{secrets.token_hex(2)}")["ImageId"]
        assert wait_for(lambda: ec2.describe_images(ImageIds=[image])["Images"][0]["State"]
                        in ("available", "failed"), 120)
        assert ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available"
        # Without NoReboot the instance rebooted (after its disk was captured).
        assert wait_for(lambda: run(ec2, key_pair, base, "stat -c %Z /proc/1",
                                    check=False).strip() not in ("", started), 60)
        clone = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1,
                                  MaxCount=1, KeyName=key_pair[0],
                                  SecurityGroupIds=[default, web])["Instances"][0]["InstanceId"]
        made.append(clone)
        address = wait_state(ec2, clone, "running")["PublicIpAddress"]
        assert wait_for(lambda: ssh(key_pair[1], address, "curl -s localhost:8080/",
                                    check=False).stdout.strip() == "from-the-image", 30)
        assert run(ec2, key_pair, clone, "systemctl is-enabled app.service").strip() == "enabled"
        ids = {run(ec2, key_pair, i, "cat /etc/machine-id").strip() for i in (base, clone)}
        assert len(ids) == 2 and "" not in ids, ids  # the clone made its own
        ec2.terminate_instances(InstanceIds=made)
        for iid in made:
            wait_state(ec2, iid, "terminated")
        ec2.deregister_image(ImageId=image, DeleteAssociatedSnapshots=True)
    finally:
        ec2.terminate_instances(InstanceIds=made)
        for iid in made:
            wait_state(ec2, iid, "terminated")
        ec2.delete_security_group(GroupId=web)
