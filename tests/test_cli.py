"""The gureum command: ssh, logs, doctor, account create (see test_accounts.py)."""

from __future__ import annotations

import json
import os
import subprocess

from helpers import VENV_BIN, wait_state


def gureum(server, *args: str, env: dict[str, str] | None = None,  # noqa: ANN001
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir), *args],
                          capture_output=True, text=True, timeout=60, cwd=server.data_dir,
                          env=env)


def test_ssh_and_logs(server, ec2, launch, key_pair):
    iid = launch(UserData="#!/bin/sh\necho visible-in-logs\n")["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    # The key is found as <KeyName>.pem in the working directory, as the README says.
    out = gureum(server, "ssh", iid, "--", "id", "-un")
    assert out.stdout.strip() == "ec2-user", out.stderr
    logs = gureum(server, "logs", iid)
    assert "BEGIN SSH HOST KEY FINGERPRINTS" in logs.stdout
    assert gureum(server, "logs", "i-0123456789abcdef0").returncode == 1


def test_ssh_pins_the_instance_host_key(server, ec2, launch, tmp_path):
    """Public addresses are reused; a stale key from an earlier instance on the same
    address must not block ssh, and the instance's own key is the only one trusted."""
    iid = launch()["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    address = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "PublicIpAddress"]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    stale = "AAAAC3NzaC1lZDI1NTE5AAAAIBdJUiDsZ7Lwrq1f4XnVbq3bQp7j9v0Hc1Jb6Jm3Qk0K"
    (home / ".ssh" / "known_hosts_gureum").write_text(f"{address} ssh-ed25519 {stale}\n")
    out = gureum(server, "ssh", iid, "--", "id", "-un", env={**os.environ, "HOME": str(home)})
    assert out.stdout.strip() == "ec2-user", out.stderr
    pinned = (server.data_dir / "instances" / iid / "known_hosts").read_text()
    console = ec2.get_console_output(InstanceId=iid, Latest=True)["Output"]
    for line in pinned.splitlines():
        assert line.startswith(address + " ")
        assert line.split()[2] in console  # the key the instance printed at boot


def test_doctor_lists_prefixed_objects(server, ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    report = json.loads(gureum(server, "doctor").stdout)
    assert report["prefix"].startswith("gr") and len(report["prefix"]) == 6
    assert any(iid in n for n in report["objects"]["netns"])
    assert gureum(server, "doctor", "--expect-clean").returncode == 1


def test_ssh_into_a_private_instance_goes_through_its_vpc_router(server, ec2, launch):
    inst = launch(NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}])
    iid = inst["Instances"][0]["InstanceId"]
    running = wait_state(ec2, iid, "running")
    assert "PublicIpAddress" not in running
    out = gureum(server, "ssh", iid, "--", "hostname")
    assert out.stdout.strip() == f"ip-{running['PrivateIpAddress'].replace('.', '-')}", out.stderr
