"""NAT gateways: their life (pending -> available -> deleting -> deleted), their
interface and Elastic IP, routes to them, AWS's error codes, and what the VPC's router is
told (a policy route that leaves translated to the gateway's Elastic IP)."""

from __future__ import annotations

import pytest
from helpers import error_code as fails

from gureum.agent.contract import PolicyRoute
from gureum.controllers.network import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud

SOON = RESYNC_SECONDS * 2


@pytest.fixture
def net(ec2):  # noqa: ANN001, ANN201
    vpc = ec2.create_vpc(CidrBlock="10.95.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.95.1.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.95.2.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=private)["AssociationId"]
    eip = ec2.allocate_address(Domain="vpc")
    yield vpc, public, private, table, eip
    for nat in ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc]}])[
            "NatGateways"]:
        if nat["State"] not in ("deleting", "deleted"):
            ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    assert wait_for(lambda: all(n["State"] == "deleted" for n in ec2.describe_nat_gateways(
        Filter=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]), SOON)
    ec2.release_address(AllocationId=eip["AllocationId"])
    ec2.disassociate_route_table(AssociationId=assoc)
    ec2.delete_route_table(RouteTableId=table)
    ec2.delete_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0")
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    for subnet in (public, private):
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def _nat(ec2, nat_id: str) -> dict:  # noqa: ANN001
    return ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]


def test_life_of_a_nat_gateway_and_its_routes(fast: FastCloud, ec2, net) -> None:  # noqa: ANN001
    vpc, public, private, table, eip = net
    made = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip["AllocationId"],
                                  TagSpecifications=[{"ResourceType": "natgateway", "Tags": [
                                      {"Key": "Name", "Value": "out"}]}])["NatGateway"]
    nat_id = made["NatGatewayId"]
    assert made["State"] == "pending" and made["ConnectivityType"] == "public"
    assert made["VpcId"] == vpc and made["SubnetId"] == public
    (address,) = made["NatGatewayAddresses"]
    assert address["PublicIp"] == eip["PublicIp"] and address["IsPrimary"] is True
    assert address["PrivateIp"].startswith("10.95.1.")
    assert wait_for(lambda: _nat(ec2, nat_id)["State"] == "available", SOON)
    assert _nat(ec2, nat_id)["Tags"] == [{"Key": "Name", "Value": "out"}]
    # Its interface: type nat_gateway, managed by it, with the Elastic IP.
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[address["NetworkInterfaceId"]])[
        "NetworkInterfaces"][0]
    assert eni["InterfaceType"] == "nat_gateway" and eni["RequesterManaged"] is True
    assert eni["PrivateIpAddress"] == address["PrivateIp"]
    assert eni["Association"]["PublicIp"] == eip["PublicIp"]
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "interface-type", "Values": ["nat_gateway"]},
        {"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"][0]["NetworkInterfaceId"] \
        == eni["NetworkInterfaceId"]
    assert fails(ec2.delete_network_interface, NetworkInterfaceId=eni["NetworkInterfaceId"]) \
        == "InvalidParameterValue"
    assert fails(ec2.modify_network_interface_attribute,
                 NetworkInterfaceId=eni["NetworkInterfaceId"],
                 Description={"Value": "mine"}) == "OperationNotPermitted"
    addr = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]
    assert addr["NetworkInterfaceId"] == eni["NetworkInterfaceId"]
    # AWS's answer for an address a NAT gateway holds (seen in the wild: AuthFailure).
    assert fails(ec2.release_address, AllocationId=eip["AllocationId"]) == "AuthFailure"
    assert fails(ec2.disassociate_address, AssociationId=addr["AssociationId"]) \
        == "AuthFailure"
    assert fails(ec2.delete_subnet, SubnetId=public) == "DependencyViolation"
    # Filters.
    for name, value in (("state", "available"), ("subnet-id", public), ("vpc-id", vpc),
                        ("nat-gateway-id", nat_id), ("tag:Name", "out")):
        assert [n["NatGatewayId"] for n in ec2.describe_nat_gateways(
            Filter=[{"Name": name, "Values": [value]}])["NatGateways"]] == [nat_id], name
    assert ec2.describe_nat_gateways(Filter=[{"Name": "state", "Values": ["pending"]},
                                             {"Name": "vpc-id", "Values": [vpc]}])[
        "NatGateways"] == []

    # A route to it: the private subnet's traffic leaves as the Elastic IP.
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": nat_id, "State": "active",
            "Origin": "CreateRoute"} in routes
    assert ec2.describe_route_tables(Filters=[
        {"Name": "route.nat-gateway-id", "Values": [nat_id]}])["RouteTables"][0][
        "RouteTableId"] == table
    fast.cloud.network_controller.ensure_vpc(fast.cloud.controller.topology({vpc})[vpc][0])
    out = PolicyRoute("0.0.0.0/0", ("10.95.2.0/24",), "", address["PrivateIp"])  # the IGW (host) maps it to the EIP
    assert wait_for(lambda: out in fast.agent.vpcs[vpc].policy_routes, SOON), \
        fast.agent.vpcs[vpc].policy_routes

    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    assert _nat(ec2, nat_id)["State"] in ("deleting", "deleted")
    assert wait_for(lambda: _nat(ec2, nat_id)["State"] == "deleted", SOON)
    assert _nat(ec2, nat_id)["DeleteTime"] is not None
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    assert any(r.get("NatGatewayId") == nat_id and r["State"] == "blackhole" for r in routes)
    assert wait_for(lambda: PolicyRoute("0.0.0.0/0", ("10.95.2.0/24",), "blackhole")
                    in fast.agent.vpcs[vpc].policy_routes, SOON)
    assert "AssociationId" not in ec2.describe_addresses(
        AllocationIds=[eip["AllocationId"]])["Addresses"][0]  # free again
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "interface-type", "Values": ["nat_gateway"]},
        {"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"] == []
    assert fails(ec2.delete_nat_gateway, NatGatewayId=nat_id) == "NatGatewayNotFound"
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")


def test_nat_gateway_errors(ec2, net) -> None:  # noqa: ANN001
    vpc, public, private, table, eip = net
    assert fails(ec2.create_nat_gateway, SubnetId="subnet-0123456789abcdef0",
                 AllocationId=eip["AllocationId"]) == "InvalidSubnetID.NotFound"
    assert fails(ec2.create_nat_gateway, SubnetId=public,
                 AllocationId="eipalloc-0123456789abcdef0") == "InvalidAllocationID.NotFound"
    assert fails(ec2.create_nat_gateway, SubnetId=public) == "MissingParameter"
    assert fails(ec2.create_nat_gateway, SubnetId=public, ConnectivityType="private",
                 AllocationId=eip["AllocationId"]) == "InvalidParameterCombination"
    assert fails(ec2.describe_nat_gateways, NatGatewayIds=["nat-0123456789abcdef0"]) \
        == "NatGatewayNotFound"
    assert fails(ec2.delete_nat_gateway, NatGatewayId="nat-0123456789abcdef0") \
        == "NatGatewayNotFound"
    assert fails(ec2.create_route, RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                 NatGatewayId="nat-0123456789abcdef0") == "InvalidNatGatewayID.NotFound"
    first = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip["AllocationId"])[
        "NatGateway"]["NatGatewayId"]
    # The Elastic IP is taken.
    assert fails(ec2.create_nat_gateway, SubnetId=public, AllocationId=eip["AllocationId"]) \
        == "Resource.AlreadyAssociated"
    assert fails(ec2.create_route, RouteTableId=table, DestinationCidrBlock="10.95.1.0/24",
                 NatGatewayId=first) == "InvalidParameterValue"  # inside the VPC
    # A private one: no Elastic IP, its traffic leaves as its private address.
    private_nat = ec2.create_nat_gateway(SubnetId=private, ConnectivityType="private",
                                         PrivateIpAddress="10.95.2.50")["NatGateway"]
    assert private_nat["NatGatewayAddresses"][0]["PrivateIp"] == "10.95.2.50"
    assert "PublicIp" not in private_nat["NatGatewayAddresses"][0]
    assert fails(ec2.create_nat_gateway, SubnetId=private, ConnectivityType="private",
                 PrivateIpAddress="10.95.2.50") == "InvalidIPAddress.InUse"
