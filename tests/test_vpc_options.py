"""DHCP options sets and managed prefix lists with real instances: what resolv.conf says,
and what a prefix-list rule lets through nftables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import PROBE, Network, ssh, wait_for

from gureum.testing import tcp_open


@pytest.fixture
def net(ec2) -> Iterator[Network]:  # noqa: ANN001
    network = Network(ec2)
    yield network
    network.delete()


def resolv_conf(key, address: str) -> str:  # noqa: ANN001
    return ssh(key, address, "cat /etc/resolv.conf").stdout


def test_dhcp_options_reach_the_running_instance_and_the_next_boot(ec2, net, image_id, key_pair):
    (inst,) = net.launch(image_id, key_pair[0])
    address = inst["PublicIpAddress"]
    before = resolv_conf(key_pair[1], address)
    assert "nameserver 10.77.0.2" in before and ".compute.internal" in before
    dopt = ec2.create_dhcp_options(DhcpConfigurations=[
        {"Key": "domain-name", "Values": ["corp.example"]},
        {"Key": "domain-name-servers", "Values": ["10.77.1.53", "AmazonProvidedDNS"]}],
    )["DhcpOptions"]["DhcpOptionsId"]
    try:
        ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=net.vpc)
        wanted = "search corp.example\nnameserver 10.77.1.53\nnameserver 10.77.0.2\n"
        assert wait_for(lambda: wanted in resolv_conf(key_pair[1], address), 5), \
            resolv_conf(key_pair[1], address)
        # The guest cannot redirect the write: a symlink in its place is replaced, not followed.
        ssh(key_pair[1], address, "sudo ln -sf /etc/hostname /etc/resolv.conf")
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=net.vpc)
        assert wait_for(lambda: "nameserver" not in resolv_conf(key_pair[1], address), 5)
        assert ssh(key_pair[1], address, "test -L /etc/resolv.conf || echo plain; "
                   "cat /etc/hostname").stdout.split()[0] == "plain"
        ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=net.vpc)
        ec2.stop_instances(InstanceIds=[inst["InstanceId"]])
        wait_for(lambda: ec2.describe_instances(InstanceIds=[inst["InstanceId"]])[
            "Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped", 60)
        ec2.start_instances(InstanceIds=[inst["InstanceId"]])
        assert wait_for(lambda: ec2.describe_instances(InstanceIds=[inst["InstanceId"]])[
            "Reservations"][0]["Instances"][0]["State"]["Name"] == "running", 60)
        address = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])[
            "Reservations"][0]["Instances"][0]["PublicIpAddress"]
        assert wait_for(lambda: tcp_open(address, 22), 30)
        assert wanted in resolv_conf(key_pair[1], address)
    finally:
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=net.vpc)
        ec2.delete_dhcp_options(DhcpOptionsId=dopt)


_ = PROBE
