"""What Ansible's amazon.aws modules read and send, found by running them against gureum
(tests/test_ansible.py): each gap fixed there is pinned here, through boto3."""

from __future__ import annotations

from helpers import error_code as code


def test_subnets_name_their_ipv6_settings_and_turning_them_off_is_a_no_op(ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.93.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.93.1.0/24")["Subnet"]
    try:
        # ec2_vpc_subnet compares these with its parameters and modifies what differs.
        for view in (subnet, ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]):
            assert view["AssignIpv6AddressOnCreation"] is False
            assert view["Ipv6CidrBlockAssociationSet"] == []
            assert view["EnableDns64"] is False and view["Ipv6Native"] is False
            assert view["MapCustomerOwnedIpOnLaunch"] is False
        sid = subnet["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=sid, AssignIpv6AddressOnCreation={"Value": False})
        ec2.modify_subnet_attribute(SubnetId=sid, EnableDns64={"Value": False})
        ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
        assert ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["MapPublicIpOnLaunch"] is True
        # An IPv4-only subnet cannot assign IPv6 addresses; DNS64 is not applied here.
        assert code(ec2.modify_subnet_attribute, SubnetId=sid,
                    AssignIpv6AddressOnCreation={"Value": True}) == "InvalidParameterValue"
        assert code(ec2.modify_subnet_attribute, SubnetId=sid,
                    EnableDns64={"Value": True}) == "UnsupportedOperation"
        assert code(ec2.modify_subnet_attribute, SubnetId=sid,
                    MapPublicIpOnLaunch={"Value": False},
                    AssignIpv6AddressOnCreation={"Value": False}) == "InvalidParameterCombination"
        assert code(ec2.modify_subnet_attribute, SubnetId=sid) == "MissingParameter"
        assert code(ec2.modify_subnet_attribute, SubnetId="subnet-0123456789abcdef0",
                    MapPublicIpOnLaunch={"Value": True}) == "InvalidSubnetID.NotFound"
    finally:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=vpc)
