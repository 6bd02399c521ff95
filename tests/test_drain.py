"""Drain, for real (issue #13): two hosts in one zone (the control host and a joined one,
a netns on a veth). A stopped instance on the drained host moves to the other with its
root disk: its files, owners (shifted to the new host's uid range) and set-id bits come
along, so it starts there, SSH logs in with the same key and its user's files are its
user's."""

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
        ssh(key, ip, "echo kept > ~/kept && sudo -n sh -c "
                     "'cp /bin/true /usr/local/bin/t && chmod 4755 /usr/local/bin/t'")
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
