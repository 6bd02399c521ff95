"""Elastic IPs and the default VPC views."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from helpers import ssh, wait_for, wait_state


def code_of(call, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"]


def hostname_at(key, ip: str) -> str:  # noqa: ANN001
    result = ssh(key, ip, "hostname", check=False, timeout=10)
    return result.stdout.strip() if result.returncode == 0 else ""


def test_elastic_ip_moves_between_running_instances_and_survives_stop_start(ec2, launch, key_pair):
    a = launch()["Instances"][0]
    b = launch()["Instances"][0]
    for inst in (a, b):
        wait_state(ec2, inst["InstanceId"], "running")
    eip = ec2.allocate_address(Domain="vpc")
    try:
        assoc = ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=a["InstanceId"])
        name_a = f"ip-{a['PrivateIpAddress'].replace('.', '-')}"
        name_b = f"ip-{b['PrivateIpAddress'].replace('.', '-')}"
        assert wait_for(lambda: hostname_at(key_pair[1], eip["PublicIp"]) == name_a, 5)
        assert wait_state(ec2, a["InstanceId"], "running")["PublicIpAddress"] == eip["PublicIp"]
        assert code_of(ec2.associate_address, AllocationId=eip["AllocationId"],
                       InstanceId=b["InstanceId"]) == "Resource.AlreadyAssociated"
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=b["InstanceId"],
                              AllowReassociation=True)
        assert wait_for(lambda: hostname_at(key_pair[1], eip["PublicIp"]) == name_b, 5)
        moved_from = wait_state(ec2, a["InstanceId"], "running")["PublicIpAddress"]
        assert moved_from != eip["PublicIp"] and hostname_at(key_pair[1], moved_from) == name_a
        ec2.stop_instances(InstanceIds=[b["InstanceId"]])
        stopped = wait_state(ec2, b["InstanceId"], "stopped")
        assert stopped["PublicIpAddress"] == eip["PublicIp"]  # an EIP stays through stop
        ec2.start_instances(InstanceIds=[b["InstanceId"]])
        wait_state(ec2, b["InstanceId"], "running")
        assert wait_for(lambda: hostname_at(key_pair[1], eip["PublicIp"]) == name_b, 10)
        described = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]
        assert described["InstanceId"] == b["InstanceId"]
        assert described["PrivateIpAddress"] == b["PrivateIpAddress"]
        assert code_of(ec2.release_address, AllocationId=eip["AllocationId"]) == "InvalidIPAddress.InUse"
        ec2.disassociate_address(AssociationId=ec2.describe_addresses(
            AllocationIds=[eip["AllocationId"]])["Addresses"][0]["AssociationId"])
        fresh = wait_state(ec2, b["InstanceId"], "running")["PublicIpAddress"]
        assert fresh and fresh != eip["PublicIp"]
        assert wait_for(lambda: hostname_at(key_pair[1], fresh) == name_b, 5)
        assert "InstanceId" not in ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]
        del assoc
    finally:
        addr = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]
        if addr.get("AssociationId"):
            ec2.disassociate_address(AssociationId=addr["AssociationId"])
        ec2.release_address(AllocationId=eip["AllocationId"])
    assert code_of(ec2.release_address, AllocationId=eip["AllocationId"]) == "InvalidAllocationID.NotFound"


def test_address_errors_and_limits(ec2):
    assert code_of(ec2.associate_address, AllocationId="eipalloc-0123456789abcdef0",
                   InstanceId="i-0123456789abcdef0") == "InvalidAllocationID.NotFound"
    assert code_of(ec2.disassociate_address, AssociationId="eipassoc-0123456789abcdef0") == "InvalidAssociationID.NotFound"
    assert code_of(ec2.describe_addresses, PublicIps=["127.1.2.3"]) == "InvalidAddress.NotFound"
    held = [ec2.allocate_address()["AllocationId"] for _ in range(5)]
    try:
        assert code_of(ec2.allocate_address) == "AddressLimitExceeded"
    finally:
        for allocation_id in held:
            ec2.release_address(AllocationId=allocation_id)


def test_default_vpc_subnet_and_interfaces(ec2, launch, server):
    vpcs = ec2.describe_vpcs()["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["IsDefault"] and vpcs[0]["CidrBlock"] == server.env["GUREUM_VPC_CIDR"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
    assert subnets[0]["DefaultForAz"] and subnets[0]["MapPublicIpOnLaunch"]
    inst = launch()["Instances"][0]
    assert inst["VpcId"] == vpcs[0]["VpcId"] and inst["SubnetId"] == subnets[0]["SubnetId"]
    enis = ec2.describe_network_interfaces(Filters=[
        {"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])["NetworkInterfaces"]
    assert enis[0]["PrivateIpAddress"] == inst["PrivateIpAddress"]
    assert code_of(ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"]) == "InvalidVpcID.NotFound"


def test_private_instances_without_public_address(ec2, launch, key_pair):
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": False})
    try:
        assert ec2.describe_subnets()["Subnets"][0]["MapPublicIpOnLaunch"] is False
        private = launch()["Instances"][0]
        assert "PublicIpAddress" not in private and private["PublicDnsName"] == ""
        # A launch can still ask for one on its interface, as with the CLI's
        # --associate-public-ip-address.
        bastion = launch(NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": True,
                                             "Groups": [default]}])["Instances"][0]
        assert bastion["PublicIpAddress"]
        wait_state(ec2, private["InstanceId"], "running")
        ip = wait_state(ec2, bastion["InstanceId"], "running")["PublicIpAddress"]
        probe = f"timeout 2 bash -c 'echo > /dev/tcp/{private['PrivateIpAddress']}/22' && echo OPEN"
        assert ssh(key_pair[1], ip, probe).stdout.strip() == "OPEN"
        ec2.stop_instances(InstanceIds=[private["InstanceId"]])
        wait_state(ec2, private["InstanceId"], "stopped")
        ec2.start_instances(InstanceIds=[private["InstanceId"]])
        assert "PublicIpAddress" not in wait_state(ec2, private["InstanceId"], "running")
        assert code_of(ec2.run_instances, ImageId=private["ImageId"], MinCount=1, MaxCount=1,
                       SecurityGroupIds=[default], NetworkInterfaces=[
                           {"DeviceIndex": 0, "AssociatePublicIpAddress": True}]) == "InvalidParameterCombination"
    finally:
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    assert code_of(ec2.modify_subnet_attribute, SubnetId="subnet-0123456789abcdef0",
                   MapPublicIpOnLaunch={"Value": True}) == "InvalidSubnetID.NotFound"
