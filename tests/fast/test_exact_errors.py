"""AWS's error codes (and messages, where tools read them) for misuse of the EC2 actions
gureum implements, beyond the ones each feature's own tests pin."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from helpers import error_code as code


def failure(call, **kwargs) -> tuple[str, str]:  # noqa: ANN001, ANN003
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_route_errors_are_aws_codes_and_words(ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.94.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    try:
        assert failure(ec2.delete_route, RouteTableId=table, DestinationCidrBlock="9.0.0.0/8") == (
            "InvalidRoute.NotFound",
            f"no route with destination-cidr-block 9.0.0.0/8 in route table {table}")
        assert failure(ec2.delete_route, RouteTableId=table,
                       DestinationCidrBlock="10.94.0.0/16") == (
            "InvalidParameterValue", f"cannot remove local route 10.94.0.0/16 in route table {table}")
        # ReplaceRoute of a missing route: InvalidParameterValue, whatever the target.
        for destination in ("0.0.0.0/0", "9.0.0.0/8"):
            assert failure(ec2.replace_route, RouteTableId=table, DestinationCidrBlock=destination,
                           GatewayId=igw) == (
                "InvalidParameterValue", f"There is no route defined for '{destination}' in the "
                "route table. Use CreateRoute instead.")
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        main = ec2.describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
        main_assoc = main["Associations"][0]["RouteTableAssociationId"]
        assert failure(ec2.disassociate_route_table, AssociationId=main_assoc) == (
            "InvalidParameterValue",
            f"cannot disassociate the main route table association {main_assoc}")
        assert code(ec2.disassociate_route_table, AssociationId="rtbassoc-0123456789abcdef0") \
            == "InvalidAssociationID.NotFound"
    finally:
        ec2.delete_route_table(RouteTableId=table)
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=igw)
        ec2.delete_vpc(VpcId=vpc)


def test_security_group_names_and_rule_limit(ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.95.0.0/16")["Vpc"]["VpcId"]
    try:
        assert failure(ec2.create_security_group, GroupName="web", Description="café",
                       VpcId=vpc) == ("InvalidParameterValue", "Value (café) for parameter "
                                      "GroupDescription is invalid. Character sets beyond ASCII "
                                      "are not supported.")
        assert code(ec2.create_security_group, GroupName="wéb", Description="d",
                    VpcId=vpc) == "InvalidParameterValue"
        group = ec2.create_security_group(GroupName="full", Description="d", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "IpRanges": [{"CidrIp": f"10.0.{n}.0/24"} for n in range(59)]}])
        # Each CIDR is a rule: two more would make 61, so neither is added.
        assert failure(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "10.1.0.0/24"}, {"CidrIp": "10.1.1.0/24"}]}]) == (
            "RulesPerSecurityGroupLimitExceeded",
            "The maximum number of rules per security group (60) has been reached.")
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "10.1.0.0/24"}]}])
        # At the limit a new rule is over it: the limit, not InvalidPermission.Duplicate.
        assert code(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
             "IpRanges": [{"CidrIp": "10.0.0.0/24"}]}]) == "RulesPerSecurityGroupLimitExceeded"
        # Egress has its own 60 (the default allow-all is one of them).
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "10.2.0.0/24"}]}])
        ec2.delete_security_group(GroupId=group)
    finally:
        ec2.delete_vpc(VpcId=vpc)


def test_modify_instance_attribute_takes_one_attribute(ec2, launch) -> None:  # noqa: ANN001
    iid = launch()["Instances"][0]["InstanceId"]
    assert failure(ec2.modify_instance_attribute, InstanceId=iid,
                   InstanceType={"Value": "t3.small"},
                   DisableApiTermination={"Value": True}) == (
        "InvalidParameterCombination",
        "Fields for multiple attribute types specified: disableApiTermination, instanceType")
    assert code(ec2.modify_instance_attribute, InstanceId=iid, Attribute="instanceType",
                Value="t3.small", DisableApiTermination={"Value": True}) \
        == "InvalidParameterCombination"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is False
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="disableApiTermination", Value="false")
