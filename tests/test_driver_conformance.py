"""What every instance driver must do, run against each known driver through the real
host agent: boot to SSH with the launch key, keep the disk across stop/start and reboot,
and leave nothing behind on terminate. (Crash points are proven by test_durability.)"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from test_agent_contract import IMAGE_CACHE, VPC, make_config

from gureum.agent import image as image_mod
from gureum.agent.agent import HostAgent
from gureum.agent.contract import InstanceSpec, Limits, RuntimeState
from gureum.agent.drivers import known_drivers
from gureum.testing import ssh, tcp_open, wait_for


@pytest.fixture(scope="module", params=sorted(known_drivers()))
def agent(request: pytest.FixtureRequest) -> Iterator[HostAgent]:
    if not image_mod.is_built(image_mod.default_image(IMAGE_CACHE)):
        pytest.skip("default image not built")
    config = make_config()
    config.instance_driver = request.param
    host = HostAgent(config)
    assert host.driver.kind == request.param
    host.ensure_host_network()
    host.ensure_vpc(VPC)
    yield host
    host.remove_vpc(VPC.vpc_id)
    host.remove_host_network()
    host.remove_cgroup_parents()
    leftovers = {k: v for k, v in host.host_objects().items() if v}
    if not leftovers:
        shutil.rmtree(config.data_dir, ignore_errors=True)
    assert not leftovers, f"driver {request.param} leaked {leftovers}"


@pytest.fixture(scope="module")
def key(agent: HostAgent) -> tuple[Path, str]:
    private = ed25519.Ed25519PrivateKey.generate()
    path = agent.config.data_dir / "conformance.pem"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    path.chmod(0o600)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    return path, public


def test_boot_ssh_disk_survives_stop_and_reboot_terminate_leaves_nothing(
        agent: HostAgent, key: tuple[Path, str]) -> None:
    pem, public = key
    address = agent.config.public_pool.replace(".0.0/16", ".0.9")
    spec = InstanceSpec(
        instance_id="i-0c0ffee00000000c1", slot=3, vpc=VPC, subnet_cidr="10.201.1.0/24",
        private_ip="10.201.1.33", public_ip=address, hostname="ip-10-201-1-33",
        limits=Limits(1, 512, 512), volume_gib=1,
        image_root=image_mod.default_image(IMAGE_CACHE).rootfs, authorized_key=public)
    agent.launch(spec)
    assert wait_for(lambda: agent.ssh_ready(spec), 60)
    out = ssh(pem, address, "hostname; echo kept > ~/marker; sync")
    assert out.stdout.split()[0] == "ip-10-201-1-33"

    agent.stop(spec, False)
    assert agent.status(spec) == RuntimeState.ABSENT
    assert not tcp_open(address, 22), "a stopped instance answers nothing"
    agent.launch(spec)
    assert wait_for(lambda: agent.ssh_ready(spec), 60)
    assert ssh(pem, address, "cat ~/marker").stdout.strip() == "kept"

    agent.reboot(spec)
    assert wait_for(lambda: agent.ssh_ready(spec), 60)
    assert ssh(pem, address, "cat ~/marker").stdout.strip() == "kept"

    agent.destroy(spec)
    assert spec.instance_id not in agent.instances()
    assert not agent.instance_dir(spec.instance_id).exists()
