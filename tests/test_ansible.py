"""Ansible's amazon.aws modules against gureum, unchanged, with only the endpoint set: a VPC,
subnet, gateway, route table, key, security group, one instance and a second network
interface attached to it made (twice: the second run changes nothing), found by tag,
reached over SSH, then terminated and deleted (twice)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from helpers import VENV_BIN, ssh

PLAYBOOKS = Path(__file__).parent / "ansible"
RUN = "ansible-proof"


def recap(output: str) -> dict[str, int]:
    """The counts of the PLAY RECAP line for localhost."""
    line = re.search(r"^localhost\s*:(.*)$", output, re.MULTILINE)
    assert line, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.group(1))}


def test_amazon_aws_playbook(server, ec2, image_id, tmp_path):  # noqa: ANN001
    key = tmp_path / "ansible-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    access, secret = server.credentials()
    env = {"PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path),
           "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
           "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret,
           **({"AWS_CA_BUNDLE": server.ca_bundle} if server.ca_bundle else {})}
    extra = json.dumps({"ansible_python_interpreter": sys.executable, "endpoint": server.endpoint,
                        "region": "gureum-1", "image_id": image_id, "run_name": RUN,
                        "public_key": (tmp_path / "ansible-key.pub").read_text().strip()})

    def playbook(name: str, **variables: object) -> dict[str, int]:
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-e", extra,
             "-e", json.dumps(variables), str(PLAYBOOKS / name)],
            env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        counts = recap(proc.stdout)
        assert counts["failed"] == 0 and counts["unreachable"] == 0, proc.stdout[-6000:]
        return counts

    try:
        assert playbook("create.yml", expect_changed=True)["changed"] == 8
        assert playbook("create.yml", expect_changed=False)["changed"] == 0
        found = ec2.describe_instances(Filters=[
            {"Name": "tag:project", "Values": [RUN]},
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
        [instance] = [i for r in found for i in r["Instances"]]
        assert instance["KeyName"] == f"{RUN}-key"
        assert sorted(n["Attachment"]["DeviceIndex"] for n in instance["NetworkInterfaces"]) == [0, 1]
        assert ssh(key, instance["PublicIpAddress"], "hostname").stdout.strip() == \
            "ip-" + instance["PrivateIpAddress"].replace(".", "-")
    finally:
        first = playbook("destroy.yml")
    assert first["changed"] == 8
    assert playbook("destroy.yml")["changed"] == 0
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{RUN}-vpc"]}])["Vpcs"] == []
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "tag:Name", "Values": [f"{RUN}-eth1"]}])["NetworkInterfaces"] == []
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [f"{RUN}-key"]}])[
        "KeyPairs"] == []
    assert ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "terminated"
