"""Elastic network interfaces through boto3: every instance's primary interface is a row
(made and deleted with it), CreateNetworkInterface with addresses and groups, filters,
attach/detach with AWS's limits and error codes, groups/description/source-dest-check,
secondary addresses, delete."""

from __future__ import annotations

import pytest
from helpers import error_code as fails

from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, empty_vpc, wait_state


@pytest.fixture
def net(ec2):  # noqa: ANN001, ANN201
    """A VPC with two subnets and a group of its own; removed after the test."""
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.1.0/24")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.2.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="eni-web",
                                      Description="eni")["GroupId"]
    yield vpc, a, b, group
    empty_vpc(ec2, vpc)
    ec2.delete_security_group(GroupId=group)
    for subnet in (a, b):
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def _eni(ec2, eni_id: str) -> dict:  # noqa: ANN001
    return ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]


def test_the_primary_interface_is_made_and_deleted_with_its_instance(
        fast: FastCloud, ec2, image_id, net) -> None:  # noqa: ANN001
    vpc, a, _, group = net
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=a,
                             SecurityGroupIds=[group])["Instances"][0]
    iid = inst["InstanceId"]
    [primary] = inst["NetworkInterfaces"]
    eni = _eni(ec2, primary["NetworkInterfaceId"])
    assert eni["Status"] == "in-use" and eni["PrivateIpAddress"] == inst["PrivateIpAddress"]
    assert eni["Attachment"]["InstanceId"] == iid and eni["Attachment"]["DeviceIndex"] == 0
    assert eni["Attachment"]["DeleteOnTermination"] is True
    assert [g["GroupId"] for g in eni["Groups"]] == [group]
    assert eni["SubnetId"] == a and eni["VpcId"] == vpc
    found = ec2.describe_network_interfaces(Filters=[
        {"Name": "attachment.instance-id", "Values": [iid]},
        {"Name": "attachment.device-index", "Values": ["0"]}])["NetworkInterfaces"]
    assert [e["NetworkInterfaceId"] for e in found] == [eni["NetworkInterfaceId"]]
    ec2.create_tags(Resources=[eni["NetworkInterfaceId"]], Tags=[{"Key": "k", "Value": "v"}])
    assert _eni(ec2, eni["NetworkInterfaceId"])["TagSet"] == [{"Key": "k", "Value": "v"}]
    wait_state(ec2, iid, "running")
    assert fails(ec2.detach_network_interface,
                 AttachmentId=eni["Attachment"]["AttachmentId"]) == "OperationNotPermitted"
    assert fails(ec2.delete_network_interface,
                 NetworkInterfaceId=eni["NetworkInterfaceId"]) == "InvalidNetworkInterface.InUse"
    # The instance's groups are its primary interface's, whichever call changes them.
    other = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"][0]["GroupId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                           Groups=[other])
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [other]
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[group])
    assert [g["GroupId"] for g in _eni(ec2, eni["NetworkInterfaceId"])["Groups"]] == [group]
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert fails(ec2.describe_network_interfaces, NetworkInterfaceIds=[
        eni["NetworkInterfaceId"]]) == "InvalidNetworkInterfaceID.NotFound"


def test_create_with_addresses_groups_and_filters(ec2, net) -> None:  # noqa: ANN001
    vpc, a, b, group = net
    made = ec2.create_network_interface(
        SubnetId=b, PrivateIpAddress="10.91.2.50", Groups=[group], Description="second",
        SecondaryPrivateIpAddressCount=2, TagSpecifications=[{
            "ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": "n"}]}])[
        "NetworkInterface"]
    eni = made["NetworkInterfaceId"]
    assert made["Status"] == "available" and "Attachment" not in made
    assert made["PrivateIpAddress"] == "10.91.2.50" and made["Description"] == "second"
    addresses = [x["PrivateIpAddress"] for x in made["PrivateIpAddresses"]]
    assert addresses[0] == "10.91.2.50" and len(addresses) == 3
    assert [x["Primary"] for x in made["PrivateIpAddresses"]] == [True, False, False]
    assert made["MacAddress"].startswith("0e:") and made["AvailabilityZone"]
    for name, value in (("subnet-id", b), ("vpc-id", vpc), ("status", "available"),
                        ("group-id", group), ("description", "sec*"),
                        ("private-ip-address", "10.91.2.50"),
                        ("addresses.private-ip-address", addresses[2]), ("tag:Name", "n"),
                        ("availability-zone", made["AvailabilityZone"])):
        found = ec2.describe_network_interfaces(Filters=[  # this VPC: the session has others
            {"Name": name, "Values": [value]}, {"Name": "vpc-id", "Values": [vpc]}])
        assert [e["NetworkInterfaceId"] for e in found["NetworkInterfaces"]] == [eni], name
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "status", "Values": ["in-use"]}, {"Name": "subnet-id", "Values": [b]}])[
        "NetworkInterfaces"] == []
    assert fails(ec2.describe_network_interfaces, Filters=[
        {"Name": "no-such-filter", "Values": ["x"]}]) == "InvalidParameterValue"
    # Addresses: taken, outside the subnet, reserved; unknown subnet, group, id.
    assert fails(ec2.create_network_interface, SubnetId=b,
                 PrivateIpAddress="10.91.2.50") == "InvalidIPAddress.InUse"
    assert fails(ec2.create_network_interface, SubnetId=b,
                 PrivateIpAddress="10.91.1.50") == "InvalidParameterValue"
    assert fails(ec2.create_network_interface, SubnetId=b,
                 PrivateIpAddress="10.91.2.1") == "InvalidParameterValue"
    assert fails(ec2.create_network_interface,
                 SubnetId="subnet-0123456789abcdef0") == "InvalidSubnetID.NotFound"
    assert fails(ec2.create_network_interface, SubnetId=b,
                 Groups=["sg-0123456789abcdef0"]) == "InvalidGroup.NotFound"
    assert fails(ec2.create_network_interface, SubnetId=b,
                 SecondaryPrivateIpAddressCount=60) == "PrivateIpAddressLimitExceeded"
    assert fails(ec2.describe_network_interfaces, NetworkInterfaceIds=[
        "eni-0123456789abcdef0"]) == "InvalidNetworkInterfaceID.NotFound"
    assert fails(ec2.describe_network_interfaces, NetworkInterfaceIds=[
        "nope"]) == "InvalidNetworkInterfaceID.Malformed"
    # A default group when none is named; the subnet and groups are held while it lives.
    bare = ec2.create_network_interface(SubnetId=a)["NetworkInterface"]
    assert [g["GroupName"] for g in bare["Groups"]] == ["default"]
    assert fails(ec2.delete_subnet, SubnetId=b) == "DependencyViolation"
    assert fails(ec2.delete_security_group, GroupId=group) == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=bare["NetworkInterfaceId"])
    assert fails(ec2.delete_network_interface,
                 NetworkInterfaceId=bare["NetworkInterfaceId"]) == \
        "InvalidNetworkInterfaceID.NotFound"


def test_modify_and_secondary_addresses(ec2, net) -> None:  # noqa: ANN001
    vpc, _, b, group = net
    eni = ec2.create_network_interface(SubnetId=b)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni,
                                           Description={"Value": "changed"})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni,
                                           SourceDestCheck={"Value": False})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[group])
    seen = _eni(ec2, eni)
    assert seen["Description"] == "changed" and seen["SourceDestCheck"] is False
    assert [g["GroupId"] for g in seen["Groups"]] == [group]
    assert ec2.describe_network_interface_attribute(
        NetworkInterfaceId=eni, Attribute="description")["Description"]["Value"] == "changed"
    assert fails(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni,
                 Description={"Value": "x"}, SourceDestCheck={"Value": True}) == \
        "InvalidParameterCombination"
    other_vpc_group = ec2.describe_security_groups(GroupNames=["default"])[
        "SecurityGroups"][0]["GroupId"]
    assert fails(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni,
                 Groups=[other_vpc_group]) == "InvalidParameterValue"
    assigned = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni,
                                               SecondaryPrivateIpAddressCount=2)
    got = [a["PrivateIpAddress"] for a in assigned["AssignedPrivateIpAddresses"]]
    assert len(got) == 2
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=["10.91.2.200"])
    assert [a["PrivateIpAddress"] for a in _eni(ec2, eni)["PrivateIpAddresses"]][1:] == \
        [*got, "10.91.2.200"]
    # Another interface may take a secondary address only with AllowReassignment.
    other = ec2.create_network_interface(SubnetId=b)["NetworkInterface"]["NetworkInterfaceId"]
    assert fails(ec2.assign_private_ip_addresses, NetworkInterfaceId=other,
                 PrivateIpAddresses=["10.91.2.200"]) == "InvalidIPAddress.InUse"
    ec2.assign_private_ip_addresses(NetworkInterfaceId=other, PrivateIpAddresses=["10.91.2.200"],
                                    AllowReassignment=True)
    assert "10.91.2.200" not in [a["PrivateIpAddress"] for a in _eni(ec2, eni)["PrivateIpAddresses"]]
    assert fails(ec2.unassign_private_ip_addresses, NetworkInterfaceId=eni,
                 PrivateIpAddresses=["10.91.2.200"]) == "InvalidParameterValue"
    assert fails(ec2.unassign_private_ip_addresses, NetworkInterfaceId=eni,
                 PrivateIpAddresses=[_eni(ec2, eni)["PrivateIpAddress"]]) == \
        "InvalidParameterValue"
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=got)
    assert len(_eni(ec2, eni)["PrivateIpAddresses"]) == 1
    assert fails(ec2.assign_private_ip_addresses, NetworkInterfaceId=eni) == "MissingParameter"
    # An unassigned address is free again.
    again = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[got[0]])
    assert again["AssignedPrivateIpAddresses"] == [{"PrivateIpAddress": got[0]}]


def test_attach_and_detach_with_limits(fast: FastCloud, ec2, image_id, net) -> None:  # noqa: ANN001
    vpc, a, b, group = net
    inst = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             SubnetId=a)["Instances"][0]
    iid = inst["InstanceId"]
    eni = ec2.create_network_interface(SubnetId=b, Groups=[group])["NetworkInterface"][
        "NetworkInterfaceId"]
    third = ec2.create_network_interface(SubnetId=b)["NetworkInterface"]["NetworkInterfaceId"]
    wait_state(ec2, iid, "running")
    assert fails(ec2.attach_network_interface, NetworkInterfaceId=eni, InstanceId=iid,
                 DeviceIndex=0) == "InvalidParameterValue"
    attachment = ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid,
                                              DeviceIndex=1)["AttachmentId"]
    assert attachment.startswith("eni-attach-")
    seen = _eni(ec2, eni)
    assert seen["Status"] == "in-use" and seen["Attachment"]["DeviceIndex"] == 1
    assert seen["Attachment"]["DeleteOnTermination"] is False
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert [(n["NetworkInterfaceId"], n["Attachment"]["DeviceIndex"])
            for n in inst["NetworkInterfaces"]][1] == (eni, 1)
    for name, value in (("network-interface.network-interface-id", eni),
                        ("network-interface.addresses.private-ip-address",
                         seen["PrivateIpAddress"]),
                        ("network-interface.attachment.device-index", "1")):
        found = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])
        assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == \
            [iid], name
    assert fails(ec2.attach_network_interface, NetworkInterfaceId=eni, InstanceId=iid,
                 DeviceIndex=2) == "InvalidNetworkInterface.InUse"
    assert fails(ec2.attach_network_interface, NetworkInterfaceId=third, InstanceId=iid,
                 DeviceIndex=1) == "InvalidParameterValue"
    assert fails(ec2.attach_network_interface, NetworkInterfaceId=third, InstanceId=iid,
                 DeviceIndex=2) == "AttachmentLimitExceeded"  # t3.micro: 2 interfaces
    assert fails(ec2.delete_network_interface,
                 NetworkInterfaceId=eni) == "InvalidNetworkInterface.InUse"
    # The host: eth1 with the interface's address, the interface's group on eth1 only.
    primary_ip = inst["PrivateIpAddress"]
    assert wait_for(lambda: fast.agent.interface_addresses(iid) == {
        "eth0": [primary_ip], "eth1": [seen["PrivateIpAddress"]]}, 5)
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
        "IpRanges": [{"CidrIp": "10.91.0.0/16"}]}])
    def eth1_rules() -> list:  # noqa: ANN202
        rules = fast.agent.instances_[iid].firewall
        return [r.from_port for i in rules.interfaces if i.device == "eth1" for r in i.ingress] \
            if rules and rules.interfaces else []
    assert wait_for(lambda: eth1_rules() == [8080], 8)
    assert 8080 not in [r.from_port for r in fast.agent.instances_[iid].firewall.ingress]
    # The metadata service lists it under network/interfaces/macs.
    def macs() -> dict:  # noqa: ANN202
        served = fast.agent.served.get(vpc)
        meta = served.instances.get(primary_ip) if served else None
        return meta.tree["network"]["interfaces"]["macs"] if meta else {}
    assert wait_for(lambda: seen["MacAddress"] in macs(), 8)
    assert macs()[seen["MacAddress"]]["device-number"] == "1"
    assert macs()[seen["MacAddress"]]["interface-id"] == eni
    assert macs()[inst["NetworkInterfaces"][0]["MacAddress"]]["interface-id"] == \
        inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    # A t3.micro interface holds 2 addresses.
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)
    assert wait_for(lambda: len(fast.agent.interface_addresses(iid)["eth1"]) == 2, 8)
    assert fails(ec2.assign_private_ip_addresses, NetworkInterfaceId=eni,
                 SecondaryPrivateIpAddressCount=1) == "PrivateIpAddressLimitExceeded"
    assert fails(ec2.detach_network_interface, AttachmentId="eni-attach-0123456789abcdef0") == \
        "InvalidAttachmentID.NotFound"
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Attachment={
        "AttachmentId": attachment, "DeleteOnTermination": True})
    assert _eni(ec2, eni)["Attachment"]["DeleteOnTermination"] is True
    ec2.detach_network_interface(AttachmentId=attachment)
    seen = _eni(ec2, eni)
    assert seen["Status"] == "available" and "Attachment" not in seen
    assert wait_for(lambda: list(fast.agent.interface_addresses(iid)) == ["eth0"], 8)
    assert wait_for(lambda: not fast.agent.instances_[iid].firewall.interfaces, 8)
    # Kept (DeleteOnTermination false) or deleted (true) with the instance.
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert _eni(ec2, eni)["Status"] == "available"
    assert fails(ec2.attach_network_interface, NetworkInterfaceId=third, InstanceId=iid,
                 DeviceIndex=1) == "IncorrectInstanceState"


def test_the_migration_gives_live_instances_their_primary_interface(tmp_path) -> None:  # noqa: ANN001
    """0032 makes the row of each live instance's interface, with the id the API derived
    before rows existed (tags and IMDS answers made then stay true)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine, text

    from gureum.services.ec2 import ids
    from gureum.store.db import MIGRATIONS

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0031")
        conn.execute(text("INSERT INTO accounts (account_id, name, created_at) "
                          "VALUES ('111111111111', 'a', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO reservations (reservation_id, account_id, created_at) "
                          "VALUES ('r-1', '111111111111', '2026-01-01 00:00:00')"))
        for iid, state, ip in (("i-live", "running", "10.0.0.5"),
                               ("i-gone", "terminated", "10.0.0.6")):
            conn.execute(text(
                "INSERT INTO instances (instance_id, account_id, reservation_id, "
                "ami_launch_index, image_id, instance_type, state, desired_state, "
                "state_transition_reason, reboot_requested, reboot_done, force_stop, "
                "disable_api_termination, slot, private_ip, vpc_id, subnet_id, "
                "availability_zone, security_group_ids, volume_gib, launch_time, "
                "state_changed_at, attempts) VALUES (:iid, '111111111111', 'r-1', 0, 'ami-1', "
                "'t3.micro', :state, :state, '', 0, 0, 0, 0, 1, :ip, 'vpc-1', 'subnet-1', "
                "'az-1a', '[\"sg-1\"]', 8, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0)"),
                {"iid": iid, "state": state, "ip": ip})
        command.upgrade(cfg, "head")
        rows = conn.execute(text(
            "SELECT eni_id, instance_id, device_index, private_ip, security_group_ids, status, "
            "attachment_id, delete_on_termination FROM network_interfaces")).all()
    assert [tuple(r) for r in rows] == [
        (ids.derived("eni", "i-live"), "i-live", 0, "10.0.0.5", '["sg-1"]', "in-use",
         ids.derived("eni-attach", "i-live"), 1)]


def test_run_instances_with_several_interfaces(fast: FastCloud, ec2, image_id, net) -> None:  # noqa: ANN001
    vpc, a, b, group = net
    kept = ec2.create_network_interface(SubnetId=b, Groups=[group])["NetworkInterface"][
        "NetworkInterfaceId"]
    inst = ec2.run_instances(ImageId=image_id, InstanceType="t3.small", MinCount=1, MaxCount=1,
                             NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": a, "PrivateIpAddress": "10.91.1.40",
         "SecondaryPrivateIpAddressCount": 1, "Description": "main"},
        {"DeviceIndex": 1, "NetworkInterfaceId": kept},
        {"DeviceIndex": 2, "SubnetId": b, "Groups": [group], "PrivateIpAddress": "10.91.2.40"},
    ])["Instances"][0]
    iid = inst["InstanceId"]
    assert inst["PrivateIpAddress"] == "10.91.1.40"
    nics = {n["Attachment"]["DeviceIndex"]: n for n in inst["NetworkInterfaces"]}
    assert sorted(nics) == [0, 1, 2] and nics[1]["NetworkInterfaceId"] == kept
    assert nics[0]["Description"] == "main" and len(nics[0]["PrivateIpAddresses"]) == 2
    assert nics[2]["PrivateIpAddress"] == "10.91.2.40"
    assert nics[1]["Attachment"]["DeleteOnTermination"] is False
    assert nics[2]["Attachment"]["DeleteOnTermination"] is True
    wait_state(ec2, iid, "running")
    spec = fast.agent.last_spec[iid]
    assert [(i.device_index, i.addresses) for i in spec.interfaces][1] == (2, ("10.91.2.40",))
    assert len(spec.secondary_ips) == 1
    # Stopped and started, it keeps them all.
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    assert sorted(fast.agent.interface_addresses(iid)) == ["eth0", "eth1", "eth2"]
    # Errors as EC2 answers them.
    run = lambda **kw: ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, **kw)  # noqa: E731
    assert fails(run, NetworkInterfaces=[{"DeviceIndex": 1, "SubnetId": a}]) == \
        "InvalidParameterValue"
    assert fails(run, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a},
                                         {"DeviceIndex": 0, "SubnetId": b}]) == \
        "InvalidParameterValue"
    assert fails(run, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": a, "AssociatePublicIpAddress": True},
        {"DeviceIndex": 1, "SubnetId": b}]) == "InvalidParameterCombination"
    assert fails(run, NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": kept}]) == \
        "InvalidNetworkInterface.InUse"
    assert fails(run, NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": kept,
                                          "SubnetId": a}]) == "InvalidParameterCombination"
    assert fails(run, InstanceType="t3.micro", NetworkInterfaces=[
        {"DeviceIndex": i, "SubnetId": a} for i in range(3)]) == "AttachmentLimitExceeded"
    assert fails(run, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a,
                                          "PrivateIpAddress": "10.91.1.40"}]) == \
        "InvalidIPAddress.InUse"
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    # The existing interface stays, available; the one made with the instance is gone.
    assert _eni(ec2, kept)["Status"] == "available"
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "private-ip-address", "Values": ["10.91.2.40", "10.91.1.40"]}])[
        "NetworkInterfaces"] == []
    # An existing interface as the primary: the instance takes its subnet and address.
    again = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "NetworkInterfaceId": kept}])["Instances"][0]
    assert again["SubnetId"] == b and again["PrivateIpAddress"] == _eni(ec2, kept)[
        "PrivateIpAddress"]
    assert [g["GroupId"] for g in again["SecurityGroups"]] == [group]
    ec2.terminate_instances(InstanceIds=[again["InstanceId"]])
    wait_state(ec2, again["InstanceId"], "terminated")
    assert _eni(ec2, kept)["Status"] == "available"


def test_an_elastic_ip_on_an_interface_address(fast: FastCloud, ec2, image_id, net) -> None:  # noqa: ANN001
    vpc, a, b, group = net
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    eip = ec2.allocate_address(Domain="vpc")
    try:
        eni = ec2.create_network_interface(SubnetId=b, SecondaryPrivateIpAddressCount=1)[
            "NetworkInterface"]
        eni_id = eni["NetworkInterfaceId"]
        secondary = eni["PrivateIpAddresses"][1]["PrivateIpAddress"]
        assert fails(ec2.associate_address, AllocationId=eip["AllocationId"],
                     NetworkInterfaceId=eni_id) == "Gateway.NotAttached"
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        assert fails(ec2.associate_address, AllocationId=eip["AllocationId"],
                     NetworkInterfaceId=eni_id, PrivateIpAddress="10.91.2.250") == \
            "InvalidParameterValue"
        association = ec2.associate_address(AllocationId=eip["AllocationId"],
                                            NetworkInterfaceId=eni_id,
                                            PrivateIpAddress=secondary)["AssociationId"]
        [seen] = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
        assert (seen["NetworkInterfaceId"], seen["PrivateIpAddress"],
                seen["AssociationId"]) == (eni_id, secondary, association)
        assert "InstanceId" not in seen
        addresses = _eni(ec2, eni_id)["PrivateIpAddresses"]
        assert addresses[1]["Association"]["PublicIp"] == eip["PublicIp"]
        assert addresses[0].get("Association") is None
        assert fails(ec2.release_address, AllocationId=eip["AllocationId"]) == \
            "InvalidIPAddress.InUse"
        # Attached to a running instance in a public subnet, the host maps it.
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=b)["AssociationId"]
        iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=a)[
            "Instances"][0]["InstanceId"]
        wait_state(ec2, iid, "running")
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=iid, DeviceIndex=1)
        assert wait_for(lambda: fast.agent.public_ips.get(eip["PublicIp"], [None])[0]
                        == secondary, 8)
        [seen] = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
        assert seen["InstanceId"] == iid
        ec2.disassociate_address(AssociationId=association)
        assert wait_for(lambda: eip["PublicIp"] not in fast.agent.public_ips, 8)
        # By instance and private address: its primary address is the instance's own.
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=iid,
                              PrivateIpAddress=inst["PrivateIpAddress"])
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        assert inst["PublicIpAddress"] == eip["PublicIp"]
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
        ec2.disassociate_route_table(AssociationId=assoc)
        ec2.delete_route_table(RouteTableId=table)
    finally:
        ec2.release_address(AllocationId=eip["AllocationId"])
        if ec2.describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0][
                "Attachments"]:
            ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=igw)
