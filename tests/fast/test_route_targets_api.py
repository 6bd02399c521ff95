"""Routes to network interfaces and instances (the NAT instance pattern), and
SourceDestCheck: API shapes, AWS's error codes, and what the host is told (the router's
policy routes, the instance's unchecked interface)."""

from __future__ import annotations

import pytest
from helpers import error_code as fails
from helpers import wait_state

from gureum.agent.contract import PolicyRoute
from gureum.controllers.network import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, empty_vpc

SOON = RESYNC_SECONDS * 2


@pytest.fixture
def net(ec2):  # noqa: ANN001, ANN201
    vpc = ec2.create_vpc(CidrBlock="10.93.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.93.1.0/24")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.93.2.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=b)["AssociationId"]
    yield vpc, a, b, table
    empty_vpc(ec2, vpc)
    ec2.disassociate_route_table(AssociationId=assoc)
    ec2.delete_route_table(RouteTableId=table)
    for subnet in (a, b):
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def _routes(ec2, table: str) -> list[dict]:  # noqa: ANN001
    return ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]


def test_routes_to_an_instance_and_an_interface(fast: FastCloud, ec2, image_id, net) -> None:  # noqa: ANN001
    vpc, a, b, table = net
    nat = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                            SubnetId=a)["Instances"][0]
    nat_id, nat_ip = nat["InstanceId"], nat["PrivateIpAddress"]
    wait_state(ec2, nat_id, "running")
    eni_id = nat["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", InstanceId=nat_id)
    # A more specific route than local must name a whole subnet of the VPC.
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.93.1.0/24",
                     NetworkInterfaceId=eni_id)
    assert {"DestinationCidrBlock": "0.0.0.0/0", "InstanceId": nat_id,
            "InstanceOwnerId": nat["NetworkInterfaces"][0]["OwnerId"],
            "NetworkInterfaceId": eni_id, "State": "active", "Origin": "CreateRoute"} \
        in _routes(ec2, table)
    assert ec2.describe_route_tables(Filters=[
        {"Name": "route.instance-id", "Values": [nat_id]}])["RouteTables"][0]["RouteTableId"] \
        == table
    # The router: b's subnet sends 0.0.0.0/0 and a's subnet to the instance's address;
    # the VPC's own range still goes by the main table (longest prefix wins).
    fast.cloud.network_controller.ensure_vpc(fast.cloud.controller.topology({vpc})[vpc][0])
    wanted = {PolicyRoute("0.0.0.0/0", ("10.93.2.0/24",), nat_ip),
              PolicyRoute("10.93.1.0/24", ("10.93.2.0/24",), nat_ip),
              PolicyRoute("10.93.0.0/16", ("10.93.2.0/24",), "")}
    assert wait_for(lambda: set(fast.agent.vpcs[vpc].policy_routes) == wanted, SOON), \
        fast.agent.vpcs[vpc].policy_routes

    # SourceDestCheck: on by default, off on the instance = off on its primary interface,
    # and the host is told (the instance's spec at its next interface sync).
    attribute = lambda: ec2.describe_instance_attribute(  # noqa: E731
        InstanceId=nat_id, Attribute="sourceDestCheck")["SourceDestCheck"]["Value"]
    assert attribute() is True
    ec2.modify_instance_attribute(InstanceId=nat_id, SourceDestCheck={"Value": False})
    assert attribute() is False
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])[
        "NetworkInterfaces"][0]["SourceDestCheck"] is False
    described = ec2.describe_instances(InstanceIds=[nat_id])["Reservations"][0]["Instances"][0]
    assert described["SourceDestCheck"] is False
    assert wait_for(lambda: fast.agent.instances_[nat_id].spec.source_dest_check is False, SOON)
    ec2.modify_instance_attribute(InstanceId=nat_id, Attribute="sourceDestCheck", Value="true")
    assert attribute() is True
    assert wait_for(lambda: fast.agent.instances_[nat_id].spec.source_dest_check is True, SOON)

    # Replace, and a blackhole once the instance is gone.
    other = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                              SubnetId=a)["Instances"][0]
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="10.93.1.0/24",
                      InstanceId=other["InstanceId"])
    ec2.terminate_instances(InstanceIds=[nat_id])
    wait_state(ec2, nat_id, "terminated")
    states = {r["DestinationCidrBlock"]: r["State"] for r in _routes(ec2, table)}
    assert states == {"10.93.0.0/16": "active", "0.0.0.0/0": "blackhole",
                      "10.93.1.0/24": "active"}
    assert wait_for(lambda: PolicyRoute("0.0.0.0/0", ("10.93.2.0/24",), "blackhole")
                    in fast.agent.vpcs[vpc].policy_routes, SOON)
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="10.93.1.0/24")
    assert wait_for(lambda: fast.agent.vpcs[vpc].policy_routes == (), SOON)


def test_route_target_errors(ec2, image_id, net) -> None:  # noqa: ANN001
    vpc, a, b, table = net
    inst = ec2.run_instances(ImageId=image_id, InstanceType="t3.small", MinCount=1,
                             MaxCount=1, SubnetId=a)["Instances"][0]
    create = lambda **kw: fails(ec2.create_route, RouteTableId=table, **kw)  # noqa: E731
    assert create(DestinationCidrBlock="0.0.0.0/0", InstanceId="i-0123456789abcdef0") \
        == "InvalidInstanceID.NotFound"
    assert create(DestinationCidrBlock="0.0.0.0/0",
                  NetworkInterfaceId="eni-0123456789abcdef0") \
        == "InvalidNetworkInterfaceID.NotFound"
    assert create(DestinationCidrBlock="10.93.1.128/25", InstanceId=inst["InstanceId"]) \
        == "InvalidParameterValue"  # more specific than local, not a whole subnet
    assert create(DestinationCidrBlock="0.0.0.0/0", InstanceId=inst["InstanceId"],
                  NetworkInterfaceId=inst["NetworkInterfaces"][0]["NetworkInterfaceId"]) \
        == "InvalidParameterCombination"
    # An instance with two interfaces: the route must name one.
    eni = ec2.create_network_interface(SubnetId=a)["NetworkInterface"]["NetworkInterfaceId"]
    wait_state(ec2, inst["InstanceId"], "running")
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=inst["InstanceId"],
                                 DeviceIndex=1)
    assert create(DestinationCidrBlock="0.0.0.0/0", InstanceId=inst["InstanceId"]) \
        == "InvalidInstanceID"
    # An interface of another VPC.
    other = ec2.create_vpc(CidrBlock="10.94.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=other, CidrBlock="10.94.1.0/24")["Subnet"]["SubnetId"]
    far = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    try:
        assert create(DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=far) \
            == "InvalidParameterValue"
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=far)
        ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=other)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni)
    assert create(DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni) \
        == "RouteAlreadyExists"
    assert fails(ec2.delete_route, RouteTableId=table, DestinationCidrBlock="10.93.0.0/16") \
        == "InvalidParameterValue"
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
