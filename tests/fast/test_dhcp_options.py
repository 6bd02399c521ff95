"""DHCP options sets: the API (shapes, filters, errors) and what instances are told:
pushed to running instances within a pass, written at every boot."""

from __future__ import annotations

import botocore.exceptions
import pytest

from gureum.agent.contract import GuestDns
from gureum.controllers.vpc_services import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state

SOON = RESYNC_SECONDS / 2  # before the periodic pass: the commit woke the pusher


def code(err: pytest.ExceptionInfo) -> str:
    return err.value.response["Error"]["Code"]


def config(options: dict) -> dict[str, list[str]]:
    return {c["Key"]: [v["Value"] for v in c["Values"]] for c in options["DhcpConfigurations"]}


def guest_dns(fast: FastCloud, instance_id: str) -> GuestDns | None:
    inst = fast.agent.instances_.get(instance_id)
    return inst.dns if inst else None


def test_create_describe_filter_delete(ec2) -> None:  # noqa: ANN001
    made = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name", "Values": ["corp.example"]},
                            {"Key": "domain-name-servers", "Values": ["10.9.0.53", "AmazonProvidedDNS"]}],
        TagSpecifications=[{"ResourceType": "dhcp-options", "Tags": [{"Key": "team", "Value": "a"}]}],
    )["DhcpOptions"]
    dopt = made["DhcpOptionsId"]
    assert dopt.startswith("dopt-") and made["OwnerId"]
    assert config(made) == {"domain-name": ["corp.example"],
                            "domain-name-servers": ["10.9.0.53", "AmazonProvidedDNS"]}
    listed = ec2.describe_dhcp_options()["DhcpOptions"]
    ids = {o["DhcpOptionsId"] for o in listed}
    assert dopt in ids and len(ids) >= 2, "the account's default set is listed too"
    for name, value in (("dhcp-options-id", dopt), ("key", "domain-name"),
                        ("value", "corp.example"), ("tag:team", "a"),
                        ("owner-id", made["OwnerId"])):
        found = ec2.describe_dhcp_options(Filters=[{"Name": name, "Values": [value]}])
        assert dopt in {o["DhcpOptionsId"] for o in found["DhcpOptions"]}, name
    assert not ec2.describe_dhcp_options(
        Filters=[{"Name": "value", "Values": ["nothing.example"]}])["DhcpOptions"]
    ec2.delete_dhcp_options(DhcpOptionsId=dopt)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ec2.describe_dhcp_options(DhcpOptionsIds=[dopt])
    assert code(err) == "InvalidDhcpOptionID.NotFound"


@pytest.mark.parametrize("configurations", [
    [{"Key": "domain-name-servers", "Values": ["not-an-address"]}],
    [{"Key": "no-such-option", "Values": ["x"]}],
    [{"Key": "domain-name-servers", "Values": ["10.0.0.1"] * 5}],
    [{"Key": "netbios-node-type", "Values": ["3"]}],
    [{"Key": "domain-name", "Values": ["bad_name!"]}],
])
def test_bad_configurations_are_refused(ec2, configurations) -> None:  # noqa: ANN001
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ec2.create_dhcp_options(DhcpConfigurations=configurations)
    assert code(err) == "InvalidParameterValue"


def test_errors_of_ids(ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    try:
        for call, kwargs, expected in (
                (ec2.associate_dhcp_options, {"DhcpOptionsId": "dopt-1234567890abcdef0",
                                              "VpcId": vpc}, "InvalidDhcpOptionID.NotFound"),
                (ec2.associate_dhcp_options, {"DhcpOptionsId": "nope", "VpcId": vpc},
                 "InvalidDhcpOptionsId.Malformed"),
                (ec2.delete_dhcp_options, {"DhcpOptionsId": "dopt-1234567890abcdef0"},
                 "InvalidDhcpOptionID.NotFound"),
                (ec2.associate_dhcp_options, {"DhcpOptionsId": "default",
                                              "VpcId": "vpc-1234567890abcdef0"},
                 "InvalidVpcID.NotFound")):
            with pytest.raises(botocore.exceptions.ClientError) as err:
                call(**kwargs)
            assert code(err) == expected, kwargs
    finally:
        ec2.delete_vpc(VpcId=vpc)


def test_association_and_dependency(ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.72.0.0/16")["Vpc"]
    default_set = vpc["DhcpOptionsId"]
    assert default_set in {o["DhcpOptionsId"] for o in ec2.describe_dhcp_options()["DhcpOptions"]}
    dopt = ec2.create_dhcp_options(DhcpConfigurations=[
        {"Key": "domain-name", "Values": ["a.example"]}])["DhcpOptions"]["DhcpOptionsId"]
    try:
        ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc["VpcId"])
        described = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]
        assert described["DhcpOptionsId"] == dopt
        assert ec2.describe_vpcs(Filters=[{"Name": "dhcp-options-id", "Values": [dopt]}])[
            "Vpcs"][0]["VpcId"] == vpc["VpcId"]
        with pytest.raises(botocore.exceptions.ClientError) as err:
            ec2.delete_dhcp_options(DhcpOptionsId=dopt)
        assert code(err) == "DependencyViolation"
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc["VpcId"])
        assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["DhcpOptionsId"] == "default"
        with pytest.raises(botocore.exceptions.ClientError) as err:
            ec2.delete_dhcp_options(DhcpOptionsId=default_set)  # other VPCs still use it
        assert code(err) == "DependencyViolation"
    finally:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
        ec2.delete_dhcp_options(DhcpOptionsId=dopt)


def test_instances_are_told_at_boot_and_while_running(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.73.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.73.1.0/24")["Subnet"]["SubnetId"]
    dopt = ec2.create_dhcp_options(DhcpConfigurations=[
        {"Key": "domain-name", "Values": ["corp.example lab.example"]},
        {"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS", "10.73.1.53"]}],
    )["DhcpOptions"]["DhcpOptionsId"]
    region = fast.cloud.config.region
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                             SubnetId=subnet)["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, inst, "running")
        assert fast.agent.last_spec[inst].dns == GuestDns(
            (f"{region}.compute.internal",), ("10.73.0.2",)), "the default set at boot"
        ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc)
        wanted = GuestDns(("corp.example", "lab.example"), ("10.73.0.2", "10.73.1.53"))
        assert wait_for(lambda: guest_dns(fast, inst) == wanted, SOON), guest_dns(fast, inst)
        assert "search corp.example lab.example\nnameserver 10.73.0.2\nnameserver 10.73.1.53" \
            in wanted.resolv_conf()
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc)
        assert wait_for(lambda: guest_dns(fast, inst) == GuestDns(), SOON)
        assert "nameserver" not in GuestDns().resolv_conf()
        ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc)
        ec2.stop_instances(InstanceIds=[inst])
        wait_state(ec2, inst, "stopped")
        ec2.start_instances(InstanceIds=[inst])
        wait_state(ec2, inst, "running")
        assert fast.agent.last_spec[inst].dns == wanted, "a boot writes the current options"
    finally:
        ec2.terminate_instances(InstanceIds=[inst])
        wait_state(ec2, inst, "terminated")
        ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)
        ec2.delete_dhcp_options(DhcpOptionsId=dopt)
