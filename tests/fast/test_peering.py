"""VPC peering: the connection's life and errors, routes to it, and what the host is
told (each side's PeeringLink with the subnets whose routes use it)."""

from __future__ import annotations

import secrets

import pytest
from helpers import error_code as fails

from gureum.agent.contract import PeeringRoute, VpcNetwork
from gureum.agent.wire import decode, encode
from gureum.controllers.network import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud

SOON = RESYNC_SECONDS / 2


@pytest.fixture
def vpcs(ec2):  # noqa: ANN001, ANN201
    made: list[str] = []

    def make(cidr: str, client=None) -> tuple[str, str, str]:  # noqa: ANN001
        client = client or ec2
        vpc = client.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        subnet = client.create_subnet(VpcId=vpc, CidrBlock=cidr.replace(".0.0/16", ".1.0/24"))[
            "Subnet"]["SubnetId"]
        main = client.describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
        made.append((client, vpc, subnet))
        return vpc, subnet, main

    yield make
    for client, vpc, subnet in reversed(made):
        for pcx in client.describe_vpc_peering_connections(Filters=[
                {"Name": "status-code", "Values": ["active", "pending-acceptance"]}])[
                "VpcPeeringConnections"]:
            client.delete_vpc_peering_connection(
                VpcPeeringConnectionId=pcx["VpcPeeringConnectionId"])
        client.delete_subnet(SubnetId=subnet)
        client.delete_vpc(VpcId=vpc)


def test_lifecycle_routes_and_the_host_view(fast: FastCloud, ec2, vpcs) -> None:  # noqa: ANN001
    a, a_subnet, a_table = vpcs("10.81.0.0/16")
    b, b_subnet, b_table = vpcs("10.82.0.0/16")
    made = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]
    pcx = made["VpcPeeringConnectionId"]
    assert made["Status"]["Code"] == "pending-acceptance"
    assert made["RequesterVpcInfo"]["CidrBlock"] == "10.81.0.0/16"
    assert made["AccepterVpcInfo"]["VpcId"] == b
    found = ec2.describe_vpc_peering_connections(Filters=[
        {"Name": "requester-vpc-info.vpc-id", "Values": [a]}])["VpcPeeringConnections"]
    assert [p["VpcPeeringConnectionId"] for p in found] == [pcx]
    assert fails(ec2.create_route, RouteTableId=a_table, DestinationCidrBlock="10.82.0.0/16",
                 VpcPeeringConnectionId="pcx-1234567890abcdef0") \
        == "InvalidVpcPeeringConnectionID.NotFound"
    accepted = ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    assert accepted["VpcPeeringConnection"]["Status"]["Code"] == "active"
    assert fails(ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pcx) \
        == "InvalidStateTransition"
    ec2.create_route(RouteTableId=a_table, DestinationCidrBlock="10.82.0.0/16",
                     VpcPeeringConnectionId=pcx)
    routes = ec2.describe_route_tables(RouteTableIds=[a_table])["RouteTables"][0]["Routes"]
    assert {"DestinationCidrBlock": "10.82.0.0/16", "VpcPeeringConnectionId": pcx,
            "State": "active", "Origin": "CreateRoute"} in routes
    assert ec2.describe_route_tables(Filters=[
        {"Name": "route.vpc-peering-connection-id", "Values": [pcx]}])["RouteTables"][0][
        "RouteTableId"] == a_table
    assert fails(ec2.delete_vpc, VpcId=a) == "DependencyViolation"

    # The host: the network controller hands each built router its side of the link.
    agent = fast.agent
    for vpc in (a, b):
        fast.cloud.network_controller.ensure_vpc(fast.cloud.controller.topology({vpc})[vpc][0])

    def link(vpc: str):  # noqa: ANN202
        network = agent.vpcs.get(vpc)
        return network.peerings[0] if network and network.peerings else None

    assert wait_for(lambda: link(a) is not None and link(a).routes == (
        PeeringRoute("10.82.0.0/16", ("10.81.1.0/24",)),), SOON), link(a)
    assert link(a).requester and link(a).peer_cidr == "10.82.0.0/16"
    assert wait_for(lambda: link(b) is not None, SOON)
    assert not link(b).requester and link(b).routes == (), "no route on b's side yet"
    ec2.create_route(RouteTableId=b_table, DestinationCidrBlock="10.81.1.0/24",
                     VpcPeeringConnectionId=pcx)
    assert wait_for(lambda: link(b).routes == (
        PeeringRoute("10.81.1.0/24", ("10.82.1.0/24",)),), SOON)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    assert wait_for(lambda: link(a) is None and link(b) is None, SOON)
    routes = ec2.describe_route_tables(RouteTableIds=[a_table])["RouteTables"][0]["Routes"]
    assert any(r.get("VpcPeeringConnectionId") == pcx and r["State"] == "blackhole"
               for r in routes)
    ec2.delete_route(RouteTableId=a_table, DestinationCidrBlock="10.82.0.0/16")
    ec2.delete_route(RouteTableId=b_table, DestinationCidrBlock="10.81.1.0/24")
    assert ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"][0]["Status"]["Code"] == "deleted"


def test_overlap_fails_and_errors(ec2, vpcs) -> None:  # noqa: ANN001
    a, _, _ = vpcs("10.83.0.0/16")
    b, _, _ = vpcs("10.83.0.0/16")
    failed = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]
    assert failed["Status"]["Code"] == "failed"
    assert fails(ec2.accept_vpc_peering_connection,
                 VpcPeeringConnectionId=failed["VpcPeeringConnectionId"]) == "InvalidStateTransition"
    assert fails(ec2.create_vpc_peering_connection, VpcId=a,
                 PeerVpcId="vpc-1234567890abcdef0") == "InvalidVpcID.NotFound"
    assert fails(ec2.describe_vpc_peering_connections, VpcPeeringConnectionIds=["pcx-x"]) \
        == "InvalidVpcPeeringConnectionId.Malformed"
    assert fails(ec2.reject_vpc_peering_connection,
                 VpcPeeringConnectionId="pcx-1234567890abcdef0") \
        == "InvalidVpcPeeringConnectionID.NotFound"


def test_across_accounts_the_accepter_decides(fast: FastCloud, ec2, vpcs) -> None:  # noqa: ANN001
    other = fast.new_account("peer-" + secrets.token_hex(3))
    a, _, _ = vpcs("10.84.0.0/16")
    b, _, _ = vpcs("10.85.0.0/16", other)
    owner = other.describe_vpcs(VpcIds=[b])["Vpcs"][0]["OwnerId"]
    assert fails(ec2.create_vpc_peering_connection, VpcId=a, PeerVpcId=b) \
        == "InvalidVpcID.NotFound", "another account's VPC needs its PeerOwnerId"
    pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b, PeerOwnerId=owner)[
        "VpcPeeringConnection"]["VpcPeeringConnectionId"]
    assert fails(ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pcx) \
        == "OperationNotPermitted", "the requester cannot accept its own request"
    seen = other.describe_vpc_peering_connections()["VpcPeeringConnections"]
    assert pcx in {p["VpcPeeringConnectionId"] for p in seen}
    other.reject_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    assert ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"][0]["Status"]["Code"] == "rejected"


def test_a_network_with_peerings_crosses_the_agent_wire_intact() -> None:
    from gureum.agent.contract import PeeringLink

    network = VpcNetwork("vpc-0123456789abcdef0", 3, "10.81.0.0/16", ("10.81.1.0/24",),
                         peerings=(PeeringLink("pcx-0123456789abcdef0", "vpc-0123456789abcdef1",
                                               "10.82.0.0/16", True, (PeeringRoute(
                                                   "10.82.0.0/16", ("10.81.1.0/24",)),)),))
    assert decode(encode(network), VpcNetwork) == network
