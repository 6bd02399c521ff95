"""Secondary IPv4 CIDR blocks: AssociateVpcCidrBlock / DisassociateVpcCidrBlock with
AWS's restrictions and error codes, DescribeVpcs' CidrBlockAssociationSet and filters,
subnets in a secondary block, and what the host is told."""

from __future__ import annotations

from helpers import error_code as fails
from helpers import wait_state

from gureum.controllers.network import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud

SOON = RESYNC_SECONDS * 2


def _blocks(ec2, vpc: str) -> list[tuple[str, str]]:  # noqa: ANN001
    found = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlockAssociationSet"]
    return [(b["CidrBlock"], b["CidrBlockState"]["State"]) for b in found]


def test_secondary_blocks(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.96.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.97.0.0/16")["Vpc"]["VpcId"]
    try:
        made = ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.98.0.0/16")
        association = made["CidrBlockAssociation"]["AssociationId"]
        assert made["VpcId"] == vpc and association.startswith("vpc-cidr-assoc-")
        assert made["CidrBlockAssociation"]["CidrBlockState"]["State"] == "associating"
        assert _blocks(ec2, vpc) == [("10.96.0.0/16", "associated"),
                                     ("10.98.0.0/16", "associated")]
        for name, value in (("cidr-block-association.cidr-block", "10.98.0.0/16"),
                            ("cidr-block-association.association-id", association)):
            assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[
                {"Name": name, "Values": [value]}])["Vpcs"]] == [vpc], name
        # AWS's restrictions.
        associate = lambda cidr, v=vpc: fails(  # noqa: E731
            ec2.associate_vpc_cidr_block, VpcId=v, CidrBlock=cidr)
        assert associate("172.16.0.0/16") == "InvalidVpc.Range"  # another RFC 1918 range
        assert associate("192.168.0.0/16") == "InvalidVpc.Range"
        assert associate("198.19.0.0/16") == "InvalidVpc.Range"
        assert associate("10.96.128.0/17") == "InvalidVpc.Range"  # overlaps the primary
        assert associate("10.98.0.0/24") == "InvalidVpc.Range"  # overlaps a secondary
        assert associate("10.99.0.0/29") == "InvalidVpc.Range"  # too small
        assert associate("10.104.0.0/15") == "InvalidVpc.Range"  # too large
        assert associate("10.99.0.1/16") == "InvalidParameterValue"
        assert fails(ec2.associate_vpc_cidr_block, VpcId="vpc-0123456789abcdef0",
                     CidrBlock="10.99.0.0/16") == "InvalidVpcID.NotFound"
        # A peered VPC's block.
        pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=other)[
            "VpcPeeringConnection"]["VpcPeeringConnectionId"]
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
        assert associate("10.97.0.0/16") == "CidrConflict"
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
        # The quota: five blocks in all.
        extra = [ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=f"10.{n}.0.0/16")[
            "CidrBlockAssociation"]["AssociationId"] for n in (100, 101, 102)]
        assert associate("10.103.0.0/16") == "CidrLimitExceeded"
        for extra_id in extra:
            ec2.disassociate_vpc_cidr_block(AssociationId=extra_id)

        # A subnet in the secondary block; the host routes both blocks into the VPC.
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.98.1.0/24")["Subnet"]["SubnetId"]
        assert fails(ec2.create_subnet, VpcId=vpc, CidrBlock="10.99.1.0/24") \
            == "InvalidSubnet.Range"
        fast.cloud.network_controller.ensure_vpc(fast.cloud.controller.topology({vpc})[vpc][0])
        assert wait_for(lambda: fast.agent.vpcs[vpc].secondary_cidrs == ("10.98.0.0/16",)
                        and "10.98.1.0/24" in fast.agent.vpcs[vpc].subnets, SOON)
        table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
            "RouteTables"][0]
        assert [r["DestinationCidrBlock"] for r in table["Routes"] if r.get("GatewayId") == "local"] \
            == ["10.96.0.0/16", "10.98.0.0/16"]
        assert fails(ec2.disassociate_vpc_cidr_block, AssociationId=association) \
            == "InvalidCidrBlock.InUse"  # a subnet is in it
        # An instance there: its metadata lists both blocks, the primary first.
        inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                 SubnetId=subnet)["Instances"][0]
        assert inst["PrivateIpAddress"].startswith("10.98.1.")

        def mac_tree() -> dict:
            served = fast.agent.served.get(vpc)
            meta = served.instances.get(inst["PrivateIpAddress"]) if served else None
            return next(iter(meta.tree["network"]["interfaces"]["macs"].values())) \
                if meta else {}

        assert wait_for(lambda: mac_tree().get("vpc-ipv4-cidr-blocks")
                        == "10.96.0.0/16\n10.98.0.0/16", SOON), mac_tree()
        assert mac_tree()["vpc-ipv4-cidr-block"] == "10.96.0.0/16"
        ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
        wait_state(ec2, inst["InstanceId"], "terminated")
        primary = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlockAssociationSet"][0][
            "AssociationId"]
        assert fails(ec2.disassociate_vpc_cidr_block, AssociationId=primary) \
            == "OperationNotPermitted"
        assert fails(ec2.disassociate_vpc_cidr_block,
                     AssociationId="vpc-cidr-assoc-0123456789abcdef0") \
            == "InvalidVpcCidrBlockAssociationID.NotFound"
        ec2.delete_subnet(SubnetId=subnet)
        gone = ec2.disassociate_vpc_cidr_block(AssociationId=association)
        assert gone["CidrBlockAssociation"]["CidrBlockState"]["State"] == "disassociating"
        assert _blocks(ec2, vpc) == [("10.96.0.0/16", "associated")]
        assert wait_for(lambda: fast.agent.vpcs[vpc].secondary_cidrs == (), SOON)
        # A public primary cannot take an RFC 1918 block.
        public = ec2.create_vpc(CidrBlock="100.64.0.0/16")["Vpc"]["VpcId"]
        try:
            assert associate("10.99.0.0/16", public) == "InvalidVpc.Range"
            ec2.associate_vpc_cidr_block(VpcId=public, CidrBlock="100.65.0.0/16")
        finally:
            ec2.delete_vpc(VpcId=public)
    finally:
        ec2.delete_vpc(VpcId=vpc)
        ec2.delete_vpc(VpcId=other)
