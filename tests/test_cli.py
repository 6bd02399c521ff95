"""The gureum command: ssh, logs, doctor, account create (see test_accounts.py)."""

from __future__ import annotations

import json
import subprocess

from conftest import VENV_BIN, wait_state


def gureum(server, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    return subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir), *args],
                          capture_output=True, text=True, timeout=60, cwd=server.data_dir)


def test_ssh_and_logs(server, ec2, launch, key_pair):
    iid = launch(UserData="#!/bin/sh\necho visible-in-logs\n")["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    # The key is found as <KeyName>.pem in the working directory, as the README says.
    out = gureum(server, "ssh", iid, "--", "id", "-un")
    assert out.stdout.strip() == "ec2-user", out.stderr
    logs = gureum(server, "logs", iid)
    assert "BEGIN SSH HOST KEY FINGERPRINTS" in logs.stdout
    assert gureum(server, "logs", "i-0123456789abcdef0").returncode == 1


def test_doctor_lists_prefixed_objects(server, ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    report = json.loads(gureum(server, "doctor").stdout)
    assert report["prefix"].startswith("gr") and len(report["prefix"]) == 6
    assert any(iid in n for n in report["objects"]["netns"])
    assert gureum(server, "doctor", "--expect-clean").returncode == 1
