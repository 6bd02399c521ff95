"""DHCP options sets and managed prefix lists with real instances: what resolv.conf says,
and what a prefix-list rule lets through nftables."""

from __future__ import annotations

import time
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
        start = time.monotonic()
        ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=net.vpc)
        wanted = "search corp.example\nnameserver 10.77.1.53\nnameserver 10.77.0.2\n"
        assert wait_for(lambda: wanted in resolv_conf(key_pair[1], address), 5), \
            resolv_conf(key_pair[1], address)
        print(f"DHCP options associated -> seen in resolv.conf over ssh in "
              f"{time.monotonic() - start:.3f} s")
        # The guest cannot redirect the write: a symlink in its place is replaced, not followed.
        ssh(key_pair[1], address, "sudo ln -sf /etc/hostname /etc/resolv.conf")
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=net.vpc)
        assert wait_for(lambda: "nameserver" not in resolv_conf(key_pair[1], address), 5)
        kind, hostname = ssh(key_pair[1], address, "test -L /etc/resolv.conf || echo plain; "
                             "cat /etc/hostname").stdout.split()
        assert kind == "plain" and hostname.startswith("ip-"), "the symlink's target is intact"
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


SERVE = "cd /tmp; nohup python3 -m http.server 8080 </dev/null >/dev/null 2>&1 &"
HOST = "169.254.86.1"  # the host's connections reach instances from its uplink address


def test_a_prefix_list_rule_follows_the_list(ec2, net, image_id, key_pair):
    pl = ec2.create_managed_prefix_list(
        PrefixListName="host", AddressFamily="IPv4", MaxEntries=4,
        Entries=[{"Cidr": "10.99.0.0/16"}])["PrefixList"]["PrefixListId"]
    group = ec2.create_security_group(GroupName="pl", Description="pl",
                                      VpcId=net.vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "PrefixListIds": [{"PrefixListId": pl}]}])
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            KeyName=key_pair[0], NetworkInterfaces=[{
                                "DeviceIndex": 0, "SubnetId": net.subnet, "Groups": [group],
                                "AssociatePublicIpAddress": True}])
    instance_id = res["Instances"][0]["InstanceId"]
    net.instances.append(instance_id)
    try:
        assert wait_for(lambda: ec2.describe_instances(InstanceIds=[instance_id])[
            "Reservations"][0]["Instances"][0]["State"]["Name"] == "running", 60)
        address = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"][0]["PublicIpAddress"]
        ssh(key_pair[1], address, SERVE)
        assert wait_for(lambda: "LISTEN" in ssh(key_pair[1], address, "ss -ltn").stdout
                        and ":8080" in ssh(key_pair[1], address, "ss -ltn").stdout, 5)
        assert not tcp_open(address, 8080), "the list does not hold the host's address yet"
        start = time.monotonic()
        ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=1,
                                       AddEntries=[{"Cidr": f"{HOST}/32"}])
        assert wait_for(lambda: tcp_open(address, 8080), 2, interval=0.02), "added: open"
        opened = time.monotonic() - start
        start = time.monotonic()
        ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=2,
                                       RemoveEntries=[{"Cidr": f"{HOST}/32"}])
        assert wait_for(lambda: not tcp_open(address, 8080), 2, interval=0.02), "removed: shut"
        print(f"prefix list entry added -> open {opened:.3f} s, "
              f"removed -> shut {time.monotonic() - start:.3f} s")
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_for(lambda: ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"][0]["State"]["Name"] == "terminated", 60)
        net.instances.remove(instance_id)
        ec2.delete_security_group(GroupId=group)
        ec2.delete_managed_prefix_list(PrefixListId=pl)


def test_peered_vpcs_talk_only_once_both_sides_route(ec2, net, image_id, key_pair):
    other = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=other, CidrBlock="10.78.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="open", Description="all",
                                      VpcId=other)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [other]}])[
        "RouteTables"][0]["RouteTableId"]
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            KeyName=key_pair[0], SubnetId=subnet, SecurityGroupIds=[group])
    target = res["Instances"][0]["InstanceId"]
    pcx = None
    try:
        (inst,) = net.launch(image_id, key_pair[0])
        assert wait_for(lambda: ec2.describe_instances(InstanceIds=[target])["Reservations"][0][
            "Instances"][0]["State"]["Name"] == "running", 60)
        far = res["Instances"][0]["PrivateIpAddress"]
        probe = PROBE.format(far, 22)

        def reach() -> str:
            return ssh(key_pair[1], inst["PublicIpAddress"], probe).stdout.strip()

        assert reach() == "CLOSED", "not peered"
        pcx = ec2.create_vpc_peering_connection(VpcId=net.vpc, PeerVpcId=other)[
            "VpcPeeringConnection"]["VpcPeeringConnectionId"]
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
        ec2.create_route(RouteTableId=net.table, DestinationCidrBlock="10.78.0.0/16",
                         VpcPeeringConnectionId=pcx)
        time.sleep(1)  # the network controller has had its pass
        assert reach() == "CLOSED", "the far side has no route back"
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.77.1.0/24",
                         VpcPeeringConnectionId=pcx)
        assert wait_for(lambda: reach() == "OPEN", 5), "both sides route: open"
        ec2.delete_route(RouteTableId=net.table, DestinationCidrBlock="10.78.0.0/16")
        assert wait_for(lambda: reach() == "CLOSED", 5), "the near side's route is gone"
    finally:
        if pcx:
            ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
        ec2.terminate_instances(InstanceIds=[target])
        wait_for(lambda: ec2.describe_instances(InstanceIds=[target])["Reservations"][0][
            "Instances"][0]["State"]["Name"] == "terminated", 60)
        ec2.delete_security_group(GroupId=group)
        ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=other)
