"""Managed prefix lists: the API with AWS's codes, use in security-group rules, and the
firewall following a list's entries without the rules being touched."""

from __future__ import annotations

import botocore.exceptions
import pytest

from gureum.controllers.firewall import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state

SOON = RESYNC_SECONDS / 2  # before the periodic pass: the commit woke the firewall


def code(err: pytest.ExceptionInfo) -> str:
    return err.value.response["Error"]["Code"]


def fails(call, **kwargs) -> str:  # noqa: ANN001, ANN003
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    return code(err)


def make(ec2, name: str = "corp", entries: tuple[str, ...] = ("10.1.0.0/16",),  # noqa: ANN001
         max_entries: int = 5) -> dict:
    return ec2.create_managed_prefix_list(
        PrefixListName=name, AddressFamily="IPv4", MaxEntries=max_entries,
        Entries=[{"Cidr": c, "Description": f"entry {c}"} for c in entries],
        TagSpecifications=[{"ResourceType": "prefix-list", "Tags": [{"Key": "k", "Value": name}]}],
    )["PrefixList"]


def test_lifecycle_versions_and_filters(ec2) -> None:  # noqa: ANN001
    made = make(ec2, "lifecycle", ("10.1.0.0/16", "192.168.7.9"))
    pl = made["PrefixListId"]
    assert pl.startswith("pl-") and made["Version"] == 1 and made["MaxEntries"] == 5
    assert made["PrefixListArn"].endswith(f":prefix-list/{pl}")
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]
    assert entries == [{"Cidr": "10.1.0.0/16", "Description": "entry 10.1.0.0/16"},
                       {"Cidr": "192.168.7.9/32", "Description": "entry 192.168.7.9"}]
    changed = ec2.modify_managed_prefix_list(
        PrefixListId=pl, CurrentVersion=1, AddEntries=[{"Cidr": "172.16.0.0/12"}],
        RemoveEntries=[{"Cidr": "10.1.0.0/16"}])["PrefixList"]
    assert changed["Version"] == 2
    assert {e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]} \
        == {"192.168.7.9/32", "172.16.0.0/12"}
    assert {e["Cidr"] for e in ec2.get_managed_prefix_list_entries(
        PrefixListId=pl, TargetVersion=1)["Entries"]} == {"10.1.0.0/16", "192.168.7.9/32"}
    renamed = ec2.modify_managed_prefix_list(PrefixListId=pl, PrefixListName="renamed")
    assert renamed["PrefixList"]["Version"] == 2, "a name change is no new version"
    restored = ec2.restore_managed_prefix_list_version(PrefixListId=pl, PreviousVersion=1,
                                                       CurrentVersion=2)["PrefixList"]
    assert restored["Version"] == 3
    assert {e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]} \
        == {"10.1.0.0/16", "192.168.7.9/32"}
    for name, value in (("prefix-list-id", pl), ("prefix-list-name", "renamed"),
                        ("owner-id", made["OwnerId"]), ("tag:k", "lifecycle")):
        found = ec2.describe_managed_prefix_lists(Filters=[{"Name": name, "Values": [value]}])
        assert [p["PrefixListId"] for p in found["PrefixLists"]] == [pl], name
    described = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert described["State"] == "modify-complete" and described["PrefixListName"] == "renamed"
    ec2.delete_managed_prefix_list(PrefixListId=pl)
    assert fails(ec2.describe_managed_prefix_lists, PrefixListIds=[pl]) \
        == "InvalidPrefixListID.NotFound"


def test_errors(ec2) -> None:  # noqa: ANN001
    pl = make(ec2, "errors", ("10.1.0.0/16",), max_entries=2)["PrefixListId"]
    try:
        assert fails(ec2.modify_managed_prefix_list, PrefixListId=pl, CurrentVersion=7,
                     AddEntries=[{"Cidr": "10.2.0.0/16"}]) == "PrefixListVersionMismatch"
        assert fails(ec2.modify_managed_prefix_list, PrefixListId=pl, CurrentVersion=1,
                     AddEntries=[{"Cidr": "10.2.0.0/16"}, {"Cidr": "10.3.0.0/16"}]) \
            == "PrefixListMaxEntriesExceeded"
        assert fails(ec2.modify_managed_prefix_list, PrefixListId=pl, CurrentVersion=1,
                     RemoveEntries=[{"Cidr": "10.9.0.0/16"}]) == "InvalidPrefixListModification"
        assert fails(ec2.modify_managed_prefix_list, PrefixListId=pl, CurrentVersion=1,
                     AddEntries=[{"Cidr": "10.1.0.0/16"}]) == "InvalidPrefixListModification"
        assert fails(ec2.modify_managed_prefix_list, PrefixListId=pl, CurrentVersion=1,
                     AddEntries=[{"Cidr": "10.2.0.0/16"}], MaxEntries=4) \
            == "InvalidParameterCombination"
        assert fails(ec2.modify_managed_prefix_list, PrefixListId=pl, CurrentVersion=1,
                     AddEntries=[{"Cidr": "10.300.0.0/16"}]) == "InvalidParameterValue"
        assert fails(ec2.get_managed_prefix_list_entries, PrefixListId="pl-1234567890abcdef0") \
            == "InvalidPrefixListID.NotFound"
        assert fails(ec2.get_managed_prefix_list_entries, PrefixListId="nope") \
            == "InvalidPrefixListId.Malformed"
        assert fails(ec2.get_managed_prefix_list_entries, PrefixListId=pl, TargetVersion=9) \
            == "InvalidParameterValue"
        assert fails(ec2.create_managed_prefix_list, PrefixListName="big", AddressFamily="IPv4",
                     MaxEntries=1, Entries=[{"Cidr": "10.0.0.0/8"}, {"Cidr": "11.0.0.0/8"}]) \
            == "PrefixListMaxEntriesExceeded"
        assert fails(ec2.create_managed_prefix_list, PrefixListName="com.amazonaws.x",
                     AddressFamily="IPv4", MaxEntries=1) == "InvalidParameterValue"
        ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=3)
        assert ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0][
            "MaxEntries"] == 3
    finally:
        ec2.delete_managed_prefix_list(PrefixListId=pl)


def test_rules_use_lists_and_the_firewall_follows_them(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    pl = make(ec2, "web", ("10.1.0.0/16",))["PrefixListId"]
    group = ec2.create_security_group(GroupName="pl-web", Description="web")["GroupId"]
    perm = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
            "PrefixListIds": [{"PrefixListId": pl, "Description": "from corp"}]}
    added = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
    rule = added["SecurityGroupRules"][0]
    assert rule["PrefixListId"] == pl and rule["Description"] == "from corp"
    assert fails(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[perm]) \
        == "InvalidPermission.Duplicate"
    assert fails(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
        {**perm, "PrefixListIds": [{"PrefixListId": "pl-1234567890abcdef0"}]}]) \
        == "InvalidPrefixListID.NotFound"
    described = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert described["IpPermissions"][0]["PrefixListIds"] == [
        {"PrefixListId": pl, "Description": "from corp"}]
    assert ec2.get_managed_prefix_list_associations(PrefixListId=pl)[
        "PrefixListAssociations"] == [{"ResourceId": group, "ResourceOwner": described["OwnerId"]}]
    assert fails(ec2.delete_managed_prefix_list, PrefixListId=pl) == "DependencyViolation"
    ec2.update_security_group_rule_descriptions_ingress(GroupId=group, IpPermissions=[
        {**perm, "PrefixListIds": [{"PrefixListId": pl, "Description": "from the office"}]}])
    rules = ec2.describe_security_group_rules(SecurityGroupRuleIds=[
        rule["SecurityGroupRuleId"]])["SecurityGroupRules"]
    assert rules[0]["Description"] == "from the office" and rules[0]["PrefixListId"] == pl
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                             SecurityGroupIds=[group])["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, inst, "running")

        def peers() -> set[str]:
            fw = fast.agent.instances_[inst].firewall
            return {p for r in fw.ingress if r.from_port == 8080 for p in r.peers} if fw else set()

        assert wait_for(lambda: peers() == {"10.1.0.0/16"}, SOON), peers()
        ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=1,
                                       AddEntries=[{"Cidr": "127.0.0.1/32"}])
        assert wait_for(lambda: peers() == {"10.1.0.0/16", "127.0.0.1/32"}, SOON), peers()
        ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=2,
                                       RemoveEntries=[{"Cidr": "10.1.0.0/16"},
                                                      {"Cidr": "127.0.0.1/32"}])
        assert wait_for(lambda: peers() == set(), SOON), "an empty list allows nothing"
        # ModifySecurityGroupRules moves the rule from the list to a CIDR and back.
        ec2.modify_security_group_rules(GroupId=group, SecurityGroupRules=[{
            "SecurityGroupRuleId": rule["SecurityGroupRuleId"], "SecurityGroupRule": {
                "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                "CidrIpv4": "10.5.0.0/16"}}])
        assert wait_for(lambda: peers() == {"10.5.0.0/16"}, SOON)
        assert not ec2.get_managed_prefix_list_associations(PrefixListId=pl)[
            "PrefixListAssociations"]
        ec2.modify_security_group_rules(GroupId=group, SecurityGroupRules=[{
            "SecurityGroupRuleId": rule["SecurityGroupRuleId"], "SecurityGroupRule": {
                "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "PrefixListId": pl}}])
        assert wait_for(lambda: peers() == set(), SOON)
    finally:
        ec2.terminate_instances(InstanceIds=[inst])
        wait_state(ec2, inst, "terminated")
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "PrefixListIds": [{"PrefixListId": pl}]}])
    ec2.delete_managed_prefix_list(PrefixListId=pl)
    ec2.delete_security_group(GroupId=group)


def test_a_list_counts_as_its_max_entries_against_the_rule_quota(ec2) -> None:  # noqa: ANN001
    pl = make(ec2, "quota", (), max_entries=60)["PrefixListId"]
    group = ec2.create_security_group(GroupName="pl-quota", Description="quota")["GroupId"]
    try:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        assert fails(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 2, "ToPort": 2,
             "PrefixListIds": [{"PrefixListId": pl}]}]) == "RulesPerSecurityGroupLimitExceeded"
    finally:
        ec2.delete_security_group(GroupId=group)
        ec2.delete_managed_prefix_list(PrefixListId=pl)
