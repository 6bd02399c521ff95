"""Elastic network interfaces with real instances and packets: an attached interface is
an eth1 of its own in the instance, reachable on its address (and its secondary ones)
only as its own security group allows, gone when detached, back after a reboot."""

from __future__ import annotations

import subprocess

import pytest
from helpers import PROBE, Network, ssh, wait_for, wait_state

SERVE = ("cd /tmp; for p in 8080 9090; do nohup python3 -m http.server $p </dev/null "
         ">/dev/null 2>&1 & done")


BOOTED = "awk '{print $22}' /proc/1/stat"  # when its init started: new after a reboot


def booted_since(key, address: str, before: str) -> bool:  # noqa: ANN001
    try:
        now = ssh(key, address, BOOTED, timeout=5, check=False).stdout
    except subprocess.TimeoutExpired:
        return False
    return bool(now.strip()) and now != before


def probe(address: str, port: int) -> str:
    return f"curl -s -o /dev/null -m 2 -w '%{{http_code}}' http://{address}:{port}/ || true"


@pytest.fixture
def net(ec2):  # noqa: ANN001, ANN201
    network = Network(ec2)
    second = ec2.create_subnet(VpcId=network.vpc, CidrBlock="10.77.2.0/24")["Subnet"]["SubnetId"]
    only_8080 = ec2.create_security_group(GroupName="eni-8080", Description="eni",
                                          VpcId=network.vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=only_8080, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
        "IpRanges": [{"CidrIp": "10.77.0.0/16"}]}, {
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    # The second subnet is public too: an Elastic IP can reach an interface there.
    ec2.associate_route_table(RouteTableId=network.table, SubnetId=second)
    eip = ec2.allocate_address(Domain="vpc")
    made: list[str] = []
    yield network, second, only_8080, made, eip
    ec2.release_address(AllocationId=eip["AllocationId"])
    for eni in made:
        found = ec2.describe_network_interfaces(Filters=[
            {"Name": "network-interface-id", "Values": [eni]}])["NetworkInterfaces"]
        if found and found[0].get("Attachment"):
            ec2.detach_network_interface(AttachmentId=found[0]["Attachment"]["AttachmentId"])
        if found:
            ec2.delete_network_interface(NetworkInterfaceId=eni)
    if network.instances:
        ec2.terminate_instances(InstanceIds=network.instances)
        for iid in network.instances:
            wait_state(ec2, iid, "terminated")
        network.instances = []
    ec2.delete_subnet(SubnetId=second)
    ec2.delete_security_group(GroupId=only_8080)
    network.delete()


def test_an_attached_interface_is_eth1_with_its_own_group(ec2, image_id, key_pair,
                                                          net) -> None:  # noqa: ANN001
    network, second, only_8080, made, eip = net
    key = key_pair[1]
    a, b = network.launch(image_id, key_pair[0], count=2)
    ssh(key, a["PublicIpAddress"], SERVE)
    eni = ec2.create_network_interface(SubnetId=second, Groups=[only_8080])["NetworkInterface"]
    made.append(eni["NetworkInterfaceId"])
    eth1 = eni["PrivateIpAddress"]
    attachment = ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                              InstanceId=a["InstanceId"],
                                              DeviceIndex=1)["AttachmentId"]
    shows = f"ip -4 -o addr show dev eth1 2>/dev/null | grep -c ' {eth1}/24 ' || true"
    assert wait_for(lambda: ssh(key, a["PublicIpAddress"], shows).stdout.strip() == "1", 10)
    # From B (eth0's subnet): eth1 answers on the port its own group allows, not on one
    # only eth0's group (open to all) allows; eth0 still answers there.
    from_b = b["PublicIpAddress"]
    assert wait_for(lambda: ssh(key, from_b, probe(eth1, 8080)).stdout == "200", 10)
    assert ssh(key, from_b, probe(eth1, 9090)).stdout != "200"
    assert ssh(key, from_b, probe(a["PrivateIpAddress"], 9090)).stdout == "200"
    # A secondary address of the interface: one more address on eth1, same group.
    extra = ec2.assign_private_ip_addresses(
        NetworkInterfaceId=eni["NetworkInterfaceId"], SecondaryPrivateIpAddressCount=1)[
        "AssignedPrivateIpAddresses"][0]["PrivateIpAddress"]
    assert wait_for(lambda: ssh(key, from_b, probe(extra, 8080)).stdout == "200", 10)
    assert ssh(key, from_b, probe(extra, 9090)).stdout != "200"
    # An Elastic IP on eth1's address: SSH from the host reaches the instance through
    # eth1 (its group allows 22) and the replies leave by eth1 again.
    association = ec2.associate_address(AllocationId=eip["AllocationId"],
                                        NetworkInterfaceId=eni["NetworkInterfaceId"],
                                        PrivateIpAddress=eth1)["AssociationId"]
    seen = "ss -Htn state established '( sport = :22 )' | awk '{print $3}'"
    assert wait_for(lambda: eth1 + ":22" in ssh(key, eip["PublicIp"], seen, check=False,
                                                timeout=10).stdout, 10)
    ec2.disassociate_address(AssociationId=association)
    # A reboot brings the interface back with the instance.
    booted = ssh(key, a["PublicIpAddress"], BOOTED).stdout
    ec2.reboot_instances(InstanceIds=[a["InstanceId"]])
    assert wait_for(lambda: booted_since(key, a["PublicIpAddress"], booted), 30, 0.5)
    assert ssh(key, a["PublicIpAddress"], shows).stdout.strip() == "1"
    ssh(key, a["PublicIpAddress"], SERVE)
    assert wait_for(lambda: ssh(key, from_b, probe(eth1, 8080)).stdout == "200", 10)
    # Detached: gone from the instance, unreachable.
    ec2.detach_network_interface(AttachmentId=attachment)
    gone = "ip link show eth1 >/dev/null 2>&1 && echo present || echo gone"
    assert wait_for(lambda: ssh(key, a["PublicIpAddress"], gone).stdout.strip() == "gone", 10)
    assert ssh(key, from_b, probe(eth1, 8080)).stdout != "200"


def test_launched_with_two_interfaces(ec2, image_id, key_pair, net) -> None:  # noqa: ANN001
    """RunInstances with entries at device index 0 and 1: eth1 is there at first boot,
    with its address, secondary one included, and goes with the instance."""
    network, second, only_8080, made, _ = net
    inst = ec2.run_instances(
        ImageId=image_id, InstanceType="t3.small", MinCount=1, MaxCount=1,
        KeyName=key_pair[0], NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": network.subnet, "Groups": [network.group]},
            {"DeviceIndex": 1, "SubnetId": second, "Groups": [only_8080],
             "SecondaryPrivateIpAddressCount": 1}])["Instances"][0]
    network.instances.append(inst["InstanceId"])
    eth1 = next(n for n in inst["NetworkInterfaces"] if n["Attachment"]["DeviceIndex"] == 1)
    wanted = sorted(a["PrivateIpAddress"] for a in eth1["PrivateIpAddresses"])
    # Without a public address (two interfaces): reached through the VPC's router.
    running = wait_state(ec2, inst["InstanceId"], "running")
    assert "PublicIpAddress" not in running
    a = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                          KeyName=key_pair[0], NetworkInterfaces=[{
                              "DeviceIndex": 0, "SubnetId": network.subnet,
                              "Groups": [network.group], "AssociatePublicIpAddress": True}])[
        "Instances"][0]
    network.instances.append(a["InstanceId"])
    jump = wait_state(ec2, a["InstanceId"], "running")["PublicIpAddress"]
    # Each of eth1's addresses answers on 22 (its group allows it) from another instance.
    for address in wanted:
        assert wait_for(lambda address=address: ssh(key_pair[1], jump, PROBE.format(
            address, 22)).stdout.strip() == "OPEN", 10), address
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    wait_state(ec2, inst["InstanceId"], "terminated")
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "subnet-id", "Values": [second]}])["NetworkInterfaces"] == []
