"""Security group rules changed in place, references across peering, and the default
VPC and subnet calls, with AWS's codes (#15)."""

from __future__ import annotations

from helpers import error_code as code

from gureum.testing_inprocess import FastCloud


def test_descriptions_and_modified_rules(ec2) -> None:  # noqa: ANN001
    group = ec2.create_security_group(GroupName="rules-in-place", Description="d")["GroupId"]
    added = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "old"}]}])["SecurityGroupRules"]
    rule_id = added[0]["SecurityGroupRuleId"]
    ec2.update_security_group_rule_descriptions_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "web from the LAN"}]}])

    def rule() -> dict:
        return ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])[
            "SecurityGroupRules"][0]

    assert rule()["Description"] == "web from the LAN"
    ec2.modify_security_group_rules(GroupId=group, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule_id, "SecurityGroupRule": {
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "192.168.0.0/16",
            "Description": "tls"}}])
    changed = rule()
    assert (changed["FromPort"], changed["CidrIpv4"], changed["Description"]) == (
        443, "192.168.0.0/16", "tls")
    assert code(ec2.update_security_group_rule_descriptions_ingress, GroupId=group,
                IpPermissions=[{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
                                "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]) == \
        "InvalidPermission.NotFound"
    assert code(ec2.modify_security_group_rules, GroupId=group, SecurityGroupRules=[{
        "SecurityGroupRuleId": "sgr-00000000000000000", "SecurityGroupRule": {
            "IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8"}}]) == \
        "InvalidSecurityGroupRuleId.NotFound"
    assert ec2.describe_security_group_references(GroupId=[group])[
        "SecurityGroupReferenceSet"] == []
    assert code(ec2.describe_security_group_references,
                GroupId=["sg-00000000000000000"]) == "InvalidGroup.NotFound"
    ec2.delete_security_group(GroupId=group)


def test_default_vpc_and_subnet(fast: FastCloud) -> None:
    fresh = fast.new_account("default-vpc-fresh")
    made = fresh.create_default_vpc()["Vpc"]
    assert made["IsDefault"] is True
    assert code(fresh.create_default_vpc) == "DefaultVpcAlreadyExists"
    assert code(fresh.create_default_subnet, AvailabilityZone="gureum-1a") == \
        "DefaultSubnetAlreadyExistsInAvailabilityZone"
    assert code(fresh.create_default_subnet, AvailabilityZone="mars-1a") == \
        "InvalidParameterValue"
