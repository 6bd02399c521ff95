"""The host agent as its own process: control plane and agent restart independently and
instances keep running while either is down."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import pytest
from helpers import ssh, wait_for

from gureum.testing import AgentProcess, Server


def state(ec2, iid: str) -> str:  # noqa: ANN001
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


@pytest.fixture(scope="module")
def split():  # noqa: ANN201
    data_dir = Path(f"/var/tmp/gureum-test-split-{secrets.token_hex(3)}")
    data_dir.mkdir(mode=0o755)
    server = Server(data_dir)
    agent = AgentProcess(server)
    agent.start()
    server.start()
    yield server, agent
    server.stop()
    agent.stop()
    leftovers = {k: v for k, v in server.host_objects().items() if v}
    if not leftovers:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert not leftovers, leftovers


def test_agent_and_control_plane_restart_independently(split):
    server, agent = split
    ec2 = server.client()
    image = ec2.describe_images()["Images"][0]["ImageId"]
    key = server.data_dir / "split.pem"
    key.write_text(ec2.create_key_pair(KeyName="split", KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="split")["Instances"][0]
    assert wait_for(lambda: state(ec2, first["InstanceId"]) == "running", 30)
    ip = first["PublicIpAddress"]
    ssh(key, ip, "echo before > /home/ec2-user/mark")

    # Agent down: the instance keeps running, the API keeps answering, nothing is marked
    # stopped, and a new launch waits in pending instead of failing.
    agent.kill()
    assert ssh(key, ip, "cat /home/ec2-user/mark").stdout.strip() == "before"
    second = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="split")["Instances"][0]
    time.sleep(4)  # longer than the health check's period
    assert state(ec2, first["InstanceId"]) == "running"
    assert state(ec2, second["InstanceId"]) == "pending"
    agent.start()
    assert wait_for(lambda: state(ec2, second["InstanceId"]) == "running", 30)
    assert ssh(key, second["PublicIpAddress"], "hostname").returncode == 0

    # Control plane down: the agent and the instances carry on, the VPC's metadata and
    # DNS included (the agent answers from what was pushed); back, it converges.
    server.kill()
    assert ssh(key, ip, "cat /home/ec2-user/mark").stdout.strip() == "before"
    imds = "curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id"
    assert ssh(key, ip, imds).stdout == first["InstanceId"]
    assert ssh(key, ip, f"getent hosts {second['PrivateDnsName']}").stdout.split()[0] == \
        second["PrivateIpAddress"]
    server.start()
    assert state(ec2, first["InstanceId"]) == "running"
    assert ssh(key, ip, "hostname").returncode == 0

    ec2.terminate_instances(InstanceIds=[first["InstanceId"], second["InstanceId"]])
    for iid in (first["InstanceId"], second["InstanceId"]):
        assert wait_for(lambda i=iid: state(ec2, i) == "terminated", 60)
