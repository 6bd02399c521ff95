"""Two hosts in one zone, for real (issue #13): the control host and a joined one (a
netns on a veth), both in gureum-1a.
- Drain: a stopped instance on the drained host moves to the other with its root disk:
  its files, owners (shifted to the new host's uid range) and set-id bits come along, so
  it starts there, SSH logs in with the same key and its user's files are its user's.
- An Elastic IP moved from an instance on one host to one on the other answers there at
  once (public addresses live on the loopback range of the host holding the instance)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import VENV_BIN, sh, ssh, wait_for, wait_state
from test_hosts_join import Cluster, running_cluster

from gureum.config import Config
from gureum.services.ec2.views import volume_id
from gureum.store import models
from gureum.store.db import Store
from gureum.testing import SSH_OPTS

LINK = "198.18.83.0/30"
CONTROL, SECOND = "198.18.83.1", "198.18.83.2"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from running_cluster(LINK, CONTROL, SECOND, zone="gureum-1a")


def _host(cluster: Cluster, *args: str) -> None:
    sh(str(VENV_BIN / "gureum"), "--data-dir", str(cluster.server.data_dir), "host", *args,
       env=cluster.server.env)


def _placed(cluster: Cluster, instance_id: str) -> str | None:
    store = Store(Config(data_dir=cluster.server.data_dir).store_url)
    try:
        with store.read() as s:
            row = s.get(models.Instance, instance_id)
            assert row is not None
            return row.host_id
    finally:
        store.engine.dispose()


def test_a_stopped_instance_moves_off_a_drained_host_and_starts_on_the_other(
        cluster: Cluster, tmp_path: Path) -> None:
    ec2 = cluster.server.client()
    key = tmp_path / "k.pem"
    key.write_text(ec2.create_key_pair(KeyName="drain", KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    hosts = cluster.hosts()
    control = next(name for name, h in hosts.items() if h["control"])
    _host(cluster, "drain", "host2")  # the instance starts on the control host
    try:
        iid = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1,
                                MaxCount=1, KeyName="drain")["Instances"][0]["InstanceId"]
    finally:
        _host(cluster, "undrain", "host2")
    try:
        ip = wait_state(ec2, iid, "running", timeout=90)["PublicIpAddress"]
        assert _placed(cluster, iid) in (None, hosts[control]["host_id"])
        # Retried briefly: one CI run saw this first login fail (exit 255) right after
        # `running`; the retry keeps the test about the move, and its stderr says why.
        tries: list[str] = []

        def marked() -> bool:
            done = ssh(key, ip, "echo kept > ~/kept && sudo -n sh -c "
                            "'cp /bin/true /usr/local/bin/t && chmod 4755 /usr/local/bin/t'",
                       check=False)
            tries.append(done.stderr.strip())
            return done.returncode == 0
        assert wait_for(marked, 20), f"ssh never succeeded: {tries[-3:]}"
        if len(tries) > 1:
            print(f"first login(s) failed before one succeeded: {tries[:-1]}")
        ec2.stop_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "stopped")

        _host(cluster, "drain", control)
        try:
            assert wait_for(lambda: _placed(cluster, iid) == cluster.agent.host_id, 60)
            prefix = Config(data_dir=cluster.server.data_dir).prefix
            root = volume_id(iid)  # its file left the control host's volume store
            assert wait_for(lambda: not (cluster.server.data_dir / "volumes" /
                                         f"{root}.img").exists(), 10)
            assert (cluster.agent.data_dir / "volumes" / f"{root}.img").exists()
            ec2.start_instances(InstanceIds=[iid])
            view = wait_state(ec2, iid, "running", timeout=90)
        finally:
            _host(cluster, "undrain", control)
        # It runs on the joined host now (that host's prefix), reached from inside it.
        netns = sh("ip", "netns", "list").stdout
        assert f"{Config(data_dir=cluster.agent.data_dir).prefix}-{iid}" in netns
        assert f"{prefix}-{iid}" not in netns
        login = sh("nsenter", f"--net=/run/netns/{cluster.second.ns}", "ssh", "-i", str(key),
                   *SSH_OPTS, f"ec2-user@{view['PublicIpAddress']}",
                   "cat ~/kept; stat -c '%U %a' ~/kept /usr/local/bin/t; sudo -n id -u",
                   check=False, timeout=60)
        assert login.returncode == 0, login.stderr
        assert login.stdout.split("\n")[:4] == ["kept", "ec2-user 644", "root 4755", "0"], \
            login.stdout
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated", timeout=60)


def _launch_on(cluster: Cluster, ec2, image: str, host: str, other: str) -> str:  # noqa: ANN001
    _host(cluster, "drain", other)
    try:
        return ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1,
                                 MaxCount=1, KeyName="drain")["Instances"][0]["InstanceId"]
    finally:
        _host(cluster, "undrain", other)


def test_an_elastic_ip_moves_between_instances_on_two_hosts(
        cluster: Cluster, tmp_path: Path) -> None:
    ec2 = cluster.server.client()
    key = tmp_path / "k.pem"
    ec2.delete_key_pair(KeyName="drain")
    key.write_text(ec2.create_key_pair(KeyName="drain", KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    control = next(name for name, h in cluster.hosts().items() if h["control"])
    here = _launch_on(cluster, ec2, image, control, "host2")
    there = _launch_on(cluster, ec2, image, "host2", control)
    eip = ec2.allocate_address(Domain="vpc")
    inside_host2 = ["nsenter", f"--net=/run/netns/{cluster.second.ns}"]

    def hostname(via: list[str]) -> str:
        login = sh(*via, "ssh", "-i", str(key), *SSH_OPTS, "-o", "ConnectTimeout=3",
                   f"ec2-user@{eip['PublicIp']}", "hostname", check=False, timeout=30)
        return login.stdout.strip() if login.returncode == 0 else ""

    try:
        views = {i: wait_state(ec2, i, "running", timeout=90) for i in (here, there)}
        assert _placed(cluster, there) == cluster.agent.host_id
        names = {i: "ip-" + v["PrivateIpAddress"].replace(".", "-") for i, v in views.items()}
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=here)
        assert wait_for(lambda: hostname([]) == names[here], 20)
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=there,
                              AllowReassociation=True)
        assert wait_for(lambda: hostname(inside_host2) == names[there], 20)
        assert hostname([]) == ""  # gone from the control host
        assert ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0][
            "InstanceId"] == there
    finally:
        ec2.disassociate_address(PublicIp=eip["PublicIp"])
        ec2.release_address(AllocationId=eip["AllocationId"])
        ec2.terminate_instances(InstanceIds=[here, there])
        for i in (here, there):
            wait_state(ec2, i, "terminated", timeout=60)
