"""CreateTags/DeleteTags check every resource type: it exists, it is the caller's, and a
missing one answers that type's NotFound code."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gureum.testing import VENV_BIN

MISSING = "0" * 17


def code_of(call, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"]


def tags_of(ec2, resource_id: str) -> dict[str, str]:  # noqa: ANN001
    rows = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return {t["Key"]: t["Value"] for t in rows}


@pytest.fixture(scope="module")
def other(server) -> Any:  # noqa: ANN001
    out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir),
                          "account", "create", "tags-tenant"], capture_output=True, text=True,
                         check=True).stdout
    creds = json.loads(out)
    return server.client(access=creds["AccessKeyId"], secret=creds["SecretAccessKey"])


@pytest.fixture
def resources(ec2) -> Any:  # noqa: ANN001
    """One resource of each network type, deleted afterwards in AWS's order."""
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    made = {"vpc": vpc}
    try:
        made["subnet"] = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.1.0/24")["Subnet"]["SubnetId"]
        made["sg"] = ec2.create_security_group(GroupName="tagged", Description="t", VpcId=vpc)["GroupId"]
        made["igw"] = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        made["rtb"] = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        made["eipalloc"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
        yield made
    finally:
        if "eipalloc" in made:
            ec2.release_address(AllocationId=made["eipalloc"])
        if "rtb" in made:
            ec2.delete_route_table(RouteTableId=made["rtb"])
        if "igw" in made:
            ec2.delete_internet_gateway(InternetGatewayId=made["igw"])
        if "sg" in made:
            ec2.delete_security_group(GroupId=made["sg"])
        if "subnet" in made:
            ec2.delete_subnet(SubnetId=made["subnet"])
        ec2.delete_vpc(VpcId=vpc)


def test_tags_on_every_network_type_and_their_owner_only(ec2, other, resources, key_pair,  # noqa: ANN001
                                                          image_id):
    key_id = ec2.describe_key_pairs(KeyNames=[key_pair[0]])["KeyPairs"][0]["KeyPairId"]
    ids = [*resources.values(), key_id, image_id]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "team", "Value": "blue"}])
    for rid in ids:
        assert tags_of(ec2, rid) == {"team": "blue"}, rid
    ec2.delete_tags(Resources=ids, Tags=[{"Key": "team"}])
    for rid in ids:
        assert tags_of(ec2, rid) == {}, rid

    # Another account sees none of them (the public image aside) and cannot tag them.
    expected = {"vpc": "InvalidVpcID.NotFound", "subnet": "InvalidSubnetID.NotFound",
                "sg": "InvalidGroup.NotFound", "igw": "InvalidInternetGatewayID.NotFound",
                "rtb": "InvalidRouteTableID.NotFound", "eipalloc": "InvalidAllocationID.NotFound"}
    for kind, rid in resources.items():
        tags = [{"Key": "stolen", "Value": "x"}]
        assert code_of(other.create_tags, Resources=[rid], Tags=tags) == expected[kind], kind
        assert code_of(other.delete_tags, Resources=[rid]) == expected[kind], kind
    assert code_of(other.create_tags, Resources=[key_id], Tags=[{"Key": "k", "Value": "v"}]) == \
        "InvalidKeyPair.NotFound"


@pytest.mark.parametrize(("prefix", "code"), [
    ("i", "InvalidInstanceID.NotFound"), ("ami", "InvalidAMIID.NotFound"),
    ("key", "InvalidKeyPair.NotFound"), ("vpc", "InvalidVpcID.NotFound"),
    ("subnet", "InvalidSubnetID.NotFound"), ("sg", "InvalidGroup.NotFound"),
    ("igw", "InvalidInternetGatewayID.NotFound"), ("rtb", "InvalidRouteTableID.NotFound"),
    ("eipalloc", "InvalidAllocationID.NotFound"), ("vol", "InvalidVolume.NotFound"),
    ("eni", "InvalidNetworkInterfaceID.NotFound"),
])
def test_missing_resource_is_that_types_not_found(ec2, prefix: str, code: str) -> None:  # noqa: ANN001
    rid = f"{prefix}-{MISSING}"
    assert code_of(ec2.create_tags, Resources=[rid], Tags=[{"Key": "k", "Value": "v"}]) == code
    assert code_of(ec2.delete_tags, Resources=[rid]) == code


def test_unknown_or_malformed_id_is_invalid_id(ec2, resources) -> None:  # noqa: ANN001
    for rid in ["foo-12345678", "vpc-xyz", "rtbassoc-" + MISSING, "nonsense"]:
        assert code_of(ec2.create_tags, Resources=[rid], Tags=[{"Key": "k", "Value": "v"}]) == "InvalidID"
    # One bad id in the batch: nothing is tagged.
    assert code_of(ec2.create_tags, Resources=[resources["vpc"], f"subnet-{MISSING}"],
                   Tags=[{"Key": "k", "Value": "v"}]) == "InvalidSubnetID.NotFound"
    assert tags_of(ec2, resources["vpc"]) == {}


def test_instance_volume_and_interface(ec2, launch) -> None:  # noqa: ANN001
    inst = launch()["Instances"][0]
    volume = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] if inst.get("BlockDeviceMappings") \
        else None
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    if volume is None:  # RunInstances may answer before the mapping is reported
        volume = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0][
            "Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    ids = [inst["InstanceId"], volume, eni]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "Name", "Value": "web"}])
    for rid in ids:
        assert tags_of(ec2, rid) == {"Name": "web"}, rid
    ec2.delete_tags(Resources=ids)
    for rid in ids:
        assert tags_of(ec2, rid) == {}, rid
