"""IPv6 in the VPC, API shapes and AWS's error codes: a VPC's Amazon-provided /56 from
the pool (CreateVpc and AssociateVpcCidrBlock), subnets' /64s (CreateSubnet and
AssociateSubnetCidrBlock), AssignIpv6AddressOnCreation, and the disassociations."""

from __future__ import annotations

import ipaddress

from helpers import error_code as fails

from gureum.testing_inprocess import FastCloud

POOL = ipaddress.ip_network("fd00:ec2::/32")


def _ipv6(ec2, vpc: str) -> list[dict]:  # noqa: ANN001
    return ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0].get("Ipv6CidrBlockAssociationSet", [])


def test_vpc_blocks_and_subnets(fast: FastCloud, ec2) -> None:  # noqa: ANN001
    made = ec2.create_vpc(CidrBlock="10.60.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    vpc = made["VpcId"]
    (block,) = made["Ipv6CidrBlockAssociationSet"]
    assert block["Ipv6CidrBlockState"]["State"] == "associating"
    assert block["AssociationId"].startswith("vpc-cidr-assoc-")
    assert block["Ipv6Pool"] == "Amazon" and block["NetworkBorderGroup"]
    net = ipaddress.ip_network(block["Ipv6CidrBlock"])
    assert net.prefixlen == 56 and net.subnet_of(POOL)
    (described,) = _ipv6(ec2, vpc)
    assert described["Ipv6CidrBlock"] == str(net)
    assert described["Ipv6CidrBlockState"]["State"] == "associated"
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[
        {"Name": "ipv6-cidr-block-association.ipv6-cidr-block", "Values": [str(net)]}])[
        "Vpcs"]] == [vpc]

    # Another VPC: a block of its own, never the same one; a second block is refused.
    other = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    assert _ipv6(ec2, other) == []
    added = ec2.associate_vpc_cidr_block(VpcId=other, AmazonProvidedIpv6CidrBlock=True)
    other_block = added["Ipv6CidrBlockAssociation"]
    assert added["VpcId"] == other
    assert other_block["Ipv6CidrBlockState"]["State"] == "associating"
    assert other_block["Ipv6CidrBlock"] != str(net)
    assert fails(ec2.associate_vpc_cidr_block, VpcId=other,
                 AmazonProvidedIpv6CidrBlock=True) == "CidrLimitExceeded"
    assert fails(ec2.associate_vpc_cidr_block, VpcId=other, CidrBlock="10.61.0.0/16",
                 AmazonProvidedIpv6CidrBlock=True) == "InvalidParameterCombination"

    # Subnets: a /64 inside the VPC's /56.
    first = str(next(net.subnets(new_prefix=64)))
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24", Ipv6CidrBlock=first)[
        "Subnet"]
    (sblock,) = subnet["Ipv6CidrBlockAssociationSet"]
    assert sblock["Ipv6CidrBlock"] == first
    assert sblock["AssociationId"].startswith("subnet-cidr-assoc-")
    assert sblock["Ipv6CidrBlockState"]["State"] == "associating"
    assert subnet["AssignIpv6AddressOnCreation"] is False
    create = lambda cidr, v4="10.60.9.0/24": fails(  # noqa: E731
        ec2.create_subnet, VpcId=vpc, CidrBlock=v4, Ipv6CidrBlock=cidr)
    assert create("fd00::/64") == "InvalidSubnet.Range"  # outside the VPC's block
    assert create(str(next(net.subnets(new_prefix=60)))) == "InvalidSubnet.Range"  # not /64
    assert create("not-a-cidr") == "InvalidParameterValue"
    assert create(first + "x") == "InvalidParameterValue"
    assert create(first) == "InvalidSubnet.Conflict"  # another subnet's
    assert fails(ec2.create_subnet, VpcId=other, CidrBlock="10.60.2.0/24",
                 Ipv6CidrBlock=first) == "InvalidSubnet.Range"  # the other VPC's range
    plain = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.2.0/24")["Subnet"]["SubnetId"]
    assert ec2.describe_subnets(SubnetIds=[plain])["Subnets"][0][
        "Ipv6CidrBlockAssociationSet"] == []

    # AssignIpv6AddressOnCreation: only for a subnet with a block.
    assert fails(ec2.modify_subnet_attribute, SubnetId=plain,
                 AssignIpv6AddressOnCreation={"Value": True}) == "InvalidParameterValue"
    ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"],
                                AssignIpv6AddressOnCreation={"Value": True})
    shown = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]
    assert shown["AssignIpv6AddressOnCreation"] is True
    assert shown["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlockState"]["State"] == \
        "associated"
    assert [n["SubnetId"] for n in ec2.describe_subnets(Filters=[
        {"Name": "ipv6-cidr-block-association.ipv6-cidr-block", "Values": [first]}])[
        "Subnets"]] == [subnet["SubnetId"]]
    assert [n["SubnetId"] for n in ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [vpc]},
        {"Name": "assign-ipv6-address-on-creation", "Values": ["true"]}])["Subnets"]] == [
        subnet["SubnetId"]]

    # AssociateSubnetCidrBlock / DisassociateSubnetCidrBlock.
    second = str(list(net.subnets(new_prefix=64))[1])
    assert fails(ec2.associate_subnet_cidr_block, SubnetId=plain,
                 Ipv6CidrBlock=first) == "InvalidSubnet.Conflict"
    assert fails(ec2.associate_subnet_cidr_block, SubnetId=plain,
                 Ipv6CidrBlock="fd00:1::/64") == "InvalidSubnet.Range"
    got = ec2.associate_subnet_cidr_block(SubnetId=plain, Ipv6CidrBlock=second)
    assert got["SubnetId"] == plain
    association = got["Ipv6CidrBlockAssociation"]
    assert association["Ipv6CidrBlock"] == second
    assert association["Ipv6CidrBlockState"]["State"] == "associating"
    assert fails(ec2.associate_subnet_cidr_block, SubnetId=plain,
                 Ipv6CidrBlock=str(list(net.subnets(new_prefix=64))[2])) == "CidrLimitExceeded"
    gone = ec2.disassociate_subnet_cidr_block(AssociationId=association["AssociationId"])
    assert gone["Ipv6CidrBlockAssociation"]["Ipv6CidrBlockState"]["State"] == "disassociating"
    assert ec2.describe_subnets(SubnetIds=[plain])["Subnets"][0][
        "Ipv6CidrBlockAssociationSet"] == []
    assert fails(ec2.disassociate_subnet_cidr_block,
                 AssociationId=association["AssociationId"]) == \
        "InvalidSubnetCidrBlockAssociationID.NotFound"

    # The VPC's block goes only once no subnet uses it.
    assert fails(ec2.disassociate_vpc_cidr_block,
                 AssociationId=block["AssociationId"]) == "InvalidCidrBlock.InUse"
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_subnet(SubnetId=plain)
    out = ec2.disassociate_vpc_cidr_block(AssociationId=block["AssociationId"])
    assert out["Ipv6CidrBlockAssociation"]["Ipv6CidrBlockState"]["State"] == "disassociating"
    assert _ipv6(ec2, vpc) == []
    assert fails(ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.3.0/24",
                 Ipv6CidrBlock=first) == "InvalidSubnet.Range"  # no block any more
    assert fails(ec2.disassociate_vpc_cidr_block,
                 AssociationId=block["AssociationId"]) == \
        "InvalidVpcCidrBlockAssociationID.NotFound"
    for v in (vpc, other):
        ec2.delete_vpc(VpcId=v)


def test_blocks_are_unique_and_deterministic(fast: FastCloud) -> None:
    """Blocks carved from a pool of four /56s: every VPC its own, the fifth refused."""
    from gureum.services.ec2 import ipv6
    from gureum.store import models

    with fast.cloud.store.write() as s:
        assert ipv6.allocate_vpc_block(s, "fd00:ec2:77::/54", "vpc-a") == \
            ipv6.allocate_vpc_block(s, "fd00:ec2:77::/54", "vpc-a")
    ec2 = fast.client()
    made = []
    original = fast.cloud.config.ipv6_pool
    fast.cloud.config.ipv6_pool = "fd00:ec2:77::/54"
    try:
        for n in range(4):
            made.append(ec2.create_vpc(CidrBlock=f"10.{70 + n}.0.0/16",
                                       AmazonProvidedIpv6CidrBlock=True)["Vpc"])
        blocks = {v["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"] for v in made}
        assert blocks == {str(n) for n in ipaddress.ip_network(
            "fd00:ec2:77::/54").subnets(new_prefix=56)}
        spare = ec2.create_vpc(CidrBlock="10.74.0.0/16")["Vpc"]["VpcId"]
        assert fails(ec2.associate_vpc_cidr_block, VpcId=spare,
                     AmazonProvidedIpv6CidrBlock=True) == "InsufficientCidrBlocks"
        made.append({"VpcId": spare})
        with fast.cloud.store.read() as s:
            assert s.get(models.Vpc, spare).ipv6_cidr is None
    finally:
        fast.cloud.config.ipv6_pool = original
        for v in made:
            ec2.delete_vpc(VpcId=v["VpcId"])


def _ipv6_network(ec2, cidr: str) -> tuple[str, str, ipaddress.IPv6Network]:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = ipaddress.ip_network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
    first = next(block.subnets(new_prefix=64))
    v4 = str(next(ipaddress.ip_network(cidr).subnets(new_prefix=24)))
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=v4, Ipv6CidrBlock=str(first))[
        "Subnet"]["SubnetId"]
    return vpc["VpcId"], subnet, first


def test_instance_and_interface_addresses(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    vpc, subnet, net = _ipv6_network(ec2, "10.62.0.0/16")
    plain = ec2.create_subnet(VpcId=vpc, CidrBlock="10.62.9.0/24")["Subnet"]["SubnetId"]
    run = lambda **kw: ec2.run_instances(  # noqa: E731
        ImageId=image_id, MinCount=1, MaxCount=1, **kw)["Instances"][0]
    made: list[str] = []
    try:
        # Counted: the lowest free addresses of the /64 (::1 is the router's).
        one = run(SubnetId=subnet, Ipv6AddressCount=2)
        made.append(one["InstanceId"])
        got = [a["Ipv6Address"] for a in one["NetworkInterfaces"][0]["Ipv6Addresses"]]
        assert got == [str(net.network_address + 16), str(net.network_address + 17)]
        assert one["Ipv6Address"] == got[0]
        # Named, on a NetworkInterfaces entry.
        named = str(net.network_address + 0x99)
        two = run(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet,
                                      "Ipv6Addresses": [{"Ipv6Address": named}]}])
        made.append(two["InstanceId"])
        assert two["Ipv6Address"] == named
        described = ec2.describe_instances(InstanceIds=[two["InstanceId"]])[
            "Reservations"][0]["Instances"][0]
        assert described["Ipv6Address"] == named
        assert described["NetworkInterfaces"][0]["Ipv6Addresses"] == [
            {"Ipv6Address": named, "IsPrimaryIpv6": False}]
        for name in ("ipv6-address", "network-interface.ipv6-addresses.ipv6-address"):
            assert [i["InstanceId"] for r in ec2.describe_instances(Filters=[
                {"Name": name, "Values": [named]}])["Reservations"] for i in r["Instances"]] \
                == [two["InstanceId"]], name
        # Errors: taken, outside, both ways, in a subnet without IPv6, many with names.
        assert fails(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                     SubnetId=subnet, Ipv6Addresses=[{"Ipv6Address": named}]) == \
            "InvalidIPAddress.InUse"
        assert fails(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                     SubnetId=subnet, Ipv6Addresses=[{"Ipv6Address": "fd00:1::20"}]) == \
            "InvalidParameterValue"
        assert fails(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                     SubnetId=subnet, Ipv6AddressCount=1,
                     Ipv6Addresses=[{"Ipv6Address": named}]) == "InvalidParameterCombination"
        assert fails(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                     SubnetId=plain, Ipv6AddressCount=1) == "InvalidParameterValue"
        assert fails(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=2,
                     SubnetId=subnet, Ipv6Addresses=[{"Ipv6Address": str(
                         net.network_address + 0x100)}]) == "InvalidParameterCombination"
        assert fails(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                     SubnetId=subnet, Ipv6AddressCount=1, NetworkInterfaces=[
                         {"DeviceIndex": 0, "SubnetId": subnet}]) == \
            "InvalidParameterCombination"
        # Automatic when the subnet assigns on creation; none without.
        without = run(SubnetId=subnet)
        made.append(without["InstanceId"])
        assert "Ipv6Address" not in without
        assert without["NetworkInterfaces"][0]["Ipv6Addresses"] == []
        ec2.modify_subnet_attribute(SubnetId=subnet, AssignIpv6AddressOnCreation={"Value": True})
        auto = run(SubnetId=subnet)
        made.append(auto["InstanceId"])
        assert ipaddress.ip_address(auto["Ipv6Address"]) in net
        declined = run(SubnetId=subnet, Ipv6AddressCount=0)  # asked for none: none
        made.append(declined["InstanceId"])
        assert "Ipv6Address" not in declined

        # Interfaces: CreateNetworkInterface, Assign/UnassignIpv6Addresses.
        eni = ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=1)[
            "NetworkInterface"]
        (first,) = [a["Ipv6Address"] for a in eni["Ipv6Addresses"]]
        eid = eni["NetworkInterfaceId"]
        added = ec2.assign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6AddressCount=2)
        assert added["NetworkInterfaceId"] == eid and len(added["AssignedIpv6Addresses"]) == 2
        extra = str(net.network_address + 0x555)
        assert ec2.assign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6Addresses=[extra])[
            "AssignedIpv6Addresses"] == [extra]
        shown = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])[
            "NetworkInterfaces"][0]
        assert [a["Ipv6Address"] for a in shown["Ipv6Addresses"]] == [
            first, *added["AssignedIpv6Addresses"], extra]
        assert [n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces(Filters=[
            {"Name": "ipv6-addresses.ipv6-address", "Values": [extra]}])[
            "NetworkInterfaces"]] == [eid]
        assert fails(ec2.assign_ipv6_addresses, NetworkInterfaceId=eid,
                     Ipv6Addresses=[named]) == "InvalidIPAddress.InUse"
        assert fails(ec2.assign_ipv6_addresses, NetworkInterfaceId=eid) == "MissingParameter"
        assert fails(ec2.assign_ipv6_addresses, NetworkInterfaceId="eni-0123456789abcdef0",
                     Ipv6AddressCount=1) == "InvalidNetworkInterfaceID.NotFound"
        assert fails(ec2.unassign_ipv6_addresses, NetworkInterfaceId=eid,
                     Ipv6Addresses=[named]) == "InvalidParameterValue"
        ec2.unassign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6Addresses=[extra, first])
        assert [a["Ipv6Address"] for a in ec2.describe_network_interfaces(
            NetworkInterfaceIds=[eid])["NetworkInterfaces"][0]["Ipv6Addresses"]] == \
            added["AssignedIpv6Addresses"]
        # A subnet's block stays while addresses in it are assigned.
        association = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0][
            "Ipv6CidrBlockAssociationSet"][0]["AssociationId"]
        assert fails(ec2.disassociate_subnet_cidr_block, AssociationId=association) == \
            "DependencyViolation"
        ec2.delete_network_interface(NetworkInterfaceId=eid)
    finally:
        ec2.terminate_instances(InstanceIds=made)


def test_security_group_rules_with_ipv6_ranges(fast: FastCloud, ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.63.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"][
        "VpcId"]
    plain_vpc = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
    try:
        def egress_of(group_name: str, v: str) -> list[dict]:
            (group,) = ec2.describe_security_groups(Filters=[
                {"Name": "vpc-id", "Values": [v]},
                {"Name": "group-name", "Values": [group_name]}])["SecurityGroups"]
            return group["IpPermissionsEgress"]

        # The default group of a VPC with IPv6 allows all IPv6 egress; of one without, not.
        (everything,) = egress_of("default", vpc)
        assert everything["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"
        assert everything["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
        assert egress_of("default", plain_vpc)[0]["Ipv6Ranges"] == []
        # ... and gets it when the VPC gets a block; new groups get the IPv4 rule only.
        ec2.associate_vpc_cidr_block(VpcId=plain_vpc, AmazonProvidedIpv6CidrBlock=True)
        assert egress_of("default", plain_vpc)[0]["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
        group = ec2.create_security_group(GroupName="v6", Description="v6", VpcId=vpc)[
            "GroupId"]
        assert egress_of("v6", vpc)[0]["Ipv6Ranges"] == []

        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
             "Ipv6Ranges": [{"CidrIpv6": "fd00:ec2::/32", "Description": "inside"}]},
            {"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1,
             "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}])
        shown = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
        by_port = {p.get("FromPort"): p for p in shown["IpPermissions"]}
        assert by_port[8080]["Ipv6Ranges"] == [{"CidrIpv6": "fd00:ec2::/32",
                                               "Description": "inside"}]
        assert by_port[8080]["IpRanges"] == []
        assert by_port[-1]["IpProtocol"] == "icmpv6"
        rules = ec2.describe_security_group_rules(Filters=[
            {"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
        assert {(r["IsEgress"], r.get("CidrIpv6"), r.get("CidrIpv4")) for r in rules} == {
            (False, "fd00:ec2::/32", None), (False, "::/0", None),
            (True, "2001:db8::/32", None), (True, None, "0.0.0.0/0")}
        assert [g["GroupId"] for g in ec2.describe_security_groups(Filters=[
            {"Name": "ip-permission.ipv6-cidr", "Values": ["fd00:ec2::/32"]}])[
            "SecurityGroups"]] == [group]
        # Errors: a malformed range, the same rule twice.
        bad = {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
               "Ipv6Ranges": [{"CidrIpv6": "fd00::zz/64"}]}
        assert fails(ec2.authorize_security_group_ingress, GroupId=group,
                     IpPermissions=[bad]) == "InvalidParameterValue"
        assert fails(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
             "Ipv6Ranges": [{"CidrIpv6": "fd00:ec2::/32"}]}]) == "InvalidPermission.Duplicate"
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
             "Ipv6Ranges": [{"CidrIpv6": "fd00:ec2::/32"}]}])
        assert 8080 not in {p.get("FromPort") for p in ec2.describe_security_groups(
            GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]}
        ec2.delete_security_group(GroupId=group)
    finally:
        for v in (vpc, plain_vpc):
            ec2.delete_vpc(VpcId=v)


def test_egress_only_gateways_and_ipv6_routes(fast: FastCloud, ec2) -> None:  # noqa: ANN001
    vpc, subnet, _ = _ipv6_network(ec2, "10.65.0.0/16")
    other = ec2.create_vpc(CidrBlock="10.66.0.0/16")["Vpc"]["VpcId"]
    made = ec2.create_egress_only_internet_gateway(VpcId=vpc, TagSpecifications=[
        {"ResourceType": "egress-only-internet-gateway", "Tags": [{"Key": "k", "Value": "v"}]}])
    eigw = made["EgressOnlyInternetGateway"]
    gid = eigw["EgressOnlyInternetGatewayId"]
    assert gid.startswith("eigw-")
    assert eigw["Attachments"] == [{"State": "attached", "VpcId": vpc}]
    (described,) = ec2.describe_egress_only_internet_gateways(
        EgressOnlyInternetGatewayIds=[gid])["EgressOnlyInternetGateways"]
    assert described["Tags"] == [{"Key": "k", "Value": "v"}]
    assert fails(ec2.describe_egress_only_internet_gateways,
                 EgressOnlyInternetGatewayIds=["eigw-0123456789abcdef0"]) == \
        "InvalidEgressOnlyInternetGatewayId.NotFound"
    assert fails(ec2.create_egress_only_internet_gateway,
                 VpcId="vpc-0123456789abcdef0") == "InvalidVpcID.NotFound"

    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    foreign = ec2.create_route_table(VpcId=other)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0",
                     EgressOnlyInternetGatewayId=gid)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    block = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0][
        "Ipv6CidrBlock"]
    assert {"DestinationIpv6CidrBlock": block, "GatewayId": "local", "State": "active",
            "Origin": "CreateRouteTable"} in routes
    assert {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": gid,
            "State": "active", "Origin": "CreateRoute"} in routes
    assert [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=[
        {"Name": "route.egress-only-internet-gateway-id", "Values": [gid]}])[
        "RouteTables"]] == [table]
    route = lambda **kw: fails(ec2.create_route, **kw)  # noqa: E731
    assert route(RouteTableId=table, DestinationIpv6CidrBlock="::/0",
                 EgressOnlyInternetGatewayId=gid) == "RouteAlreadyExists"
    assert route(RouteTableId=foreign, DestinationIpv6CidrBlock="::/0",
                 EgressOnlyInternetGatewayId=gid) == "InvalidParameterValue"
    assert route(RouteTableId=table, DestinationIpv6CidrBlock="2001:db8::/32",
                 EgressOnlyInternetGatewayId="eigw-0123456789abcdef0") == \
        "InvalidGatewayID.NotFound"
    assert route(RouteTableId=table, DestinationIpv6CidrBlock="nope",
                 EgressOnlyInternetGatewayId=gid) == "InvalidParameterValue"
    assert route(RouteTableId=table, DestinationIpv6CidrBlock="::/0",
                 DestinationCidrBlock="0.0.0.0/0",
                 EgressOnlyInternetGatewayId=gid) == "InvalidParameterCombination"
    # Deleting the gateway leaves its route a blackhole; the VPC waits for the gateway.
    assert fails(ec2.delete_vpc, VpcId=vpc) == "DependencyViolation"
    assert ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=gid)[
        "ReturnCode"] is True
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    assert next(r for r in routes if r.get("EgressOnlyInternetGatewayId"))["State"] == \
        "blackhole"
    assert fails(ec2.delete_egress_only_internet_gateway,
                 EgressOnlyInternetGatewayId=gid) == \
        "InvalidEgressOnlyInternetGatewayId.NotFound"
    ec2.delete_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0")
    assert fails(ec2.delete_route, RouteTableId=table, DestinationIpv6CidrBlock=block) == \
        "InvalidParameterValue"  # the local route
    for assoc in ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0][
            "Associations"]:
        ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
    for t in (table, foreign):
        ec2.delete_route_table(RouteTableId=t)
    ec2.delete_subnet(SubnetId=subnet)
    for v in (vpc, other):
        ec2.delete_vpc(VpcId=v)


def test_what_the_host_and_the_metadata_service_are_told(fast: FastCloud, ec2,  # noqa: ANN001
                                                         image_id) -> None:
    from gureum.testing import wait_for
    from gureum.testing_inprocess import wait_state

    vpc, subnet, net = _ipv6_network(ec2, "10.67.0.0/16")
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=subnet,
                            Ipv6AddressCount=1)["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, iid, "running")
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        address = inst["Ipv6Address"]
        spec = fast.agent.instances_[iid].spec
        assert spec.ipv6_addresses == (address,) and spec.subnet_ipv6_cidr == str(net)
        assert spec.vpc.ipv6_subnets == (str(net),) and spec.vpc.ipv6_egress_subnets == ()

        def tree() -> dict:
            served = fast.agent.served.get(vpc)
            meta = served.instances.get(inst["PrivateIpAddress"]) if served else None
            return meta.tree if meta else {}
        assert wait_for(lambda: tree().get("ipv6") == address, 8)
        mac = inst["NetworkInterfaces"][0]["MacAddress"]
        assert tree()["network"]["interfaces"]["macs"][mac]["ipv6s"] == address
        # A second address reaches the host's wanted interfaces (the firewall controller's
        # sync) and the metadata service.
        eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        (more,) = ec2.assign_ipv6_addresses(NetworkInterfaceId=eni, Ipv6AddressCount=1)[
            "AssignedIpv6Addresses"]
        assert wait_for(lambda: fast.agent.instances_[iid].spec.ipv6_addresses == (
            address, more), 8)
        assert wait_for(lambda: tree()["network"]["interfaces"]["macs"][mac]["ipv6s"] ==
                        f"{address}\n{more}", 8)
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
