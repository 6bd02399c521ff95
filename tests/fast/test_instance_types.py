"""The instance type catalogue: AWS's families and sizes, what tools read of them, and
types this host cannot hold refused as AWS refuses a zone without capacity."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from helpers import error_code as code

from gureum.testing_inprocess import FastCloud


def capacity_error(call, **kwargs) -> str:  # noqa: ANN001, ANN003
    """AWS answers InsufficientInstanceCapacity as a server error (500): retry later."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    return err.value.response["Error"]["Code"]


def test_families_sizes_and_offerings(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    types = {t["InstanceType"]: t for page in ec2.get_paginator(
        "describe_instance_types").paginate() for t in page["InstanceTypes"]}
    for family in ("t2", "t3", "t3a", "m5", "m6i", "m7i", "c5", "c6i", "c7i", "r5", "r6i", "r7i"):
        assert f"{family}.large" in types, family
    assert (types["r6i.xlarge"]["VCpuInfo"]["DefaultVCpus"],
            types["r6i.xlarge"]["MemoryInfo"]["SizeInMiB"]) == (4, 32768)
    assert types["t3a.nano"]["ProcessorInfo"]["Manufacturer"] == "AMD"
    assert types["t2.micro"]["BurstablePerformanceSupported"] is True
    assert types["c7i.large"]["CurrentGeneration"] and not types["c5.large"]["CurrentGeneration"]
    small = ec2.describe_instance_types(Filters=[
        {"Name": "vcpu-info.default-vcpus", "Values": ["1"]}])["InstanceTypes"]
    assert {t["InstanceType"] for t in small} == {"t2.nano", "t2.micro", "t2.small"}

    config = fast.cloud.config
    offered = {o["InstanceType"] for o in ec2.describe_instance_type_offerings(
        LocationType="availability-zone")["InstanceTypeOfferings"]}
    cannot = [name for name, t in types.items() if name not in offered]
    for name in offered:
        t = types[name]
        assert t["VCpuInfo"]["DefaultVCpus"] <= config.host_vcpus * config.cpu_overcommit
        assert t["MemoryInfo"]["SizeInMiB"] <= config.host_memory_mib * config.memory_overcommit
    assert "t3.nano" in offered
    if cannot:  # the host's size decides which; this one may hold them all
        assert capacity_error(ec2.run_instances, ImageId=image_id, InstanceType=cannot[0],
                              MinCount=1, MaxCount=1) == "InsufficientInstanceCapacity"
    saved = config.memory_overcommit
    config.memory_overcommit = 0.0001  # a host too small for anything
    try:
        assert capacity_error(ec2.run_instances, ImageId=image_id, InstanceType="r7i.4xlarge",
                              MinCount=1, MaxCount=1) == "InsufficientInstanceCapacity"
        assert ec2.describe_instance_type_offerings()["InstanceTypeOfferings"] == []
    finally:
        config.memory_overcommit = saved
    assert code(ec2.run_instances, ImageId=image_id, InstanceType="p5.48xlarge", MinCount=1,
                MaxCount=1) == "InvalidParameterValue"


def test_exact_ec2_errors(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    from test_front_door import error_code, signed

    # TerminateInstances without ids (sent by hand: boto3 checks the list itself).
    status, body = signed(fast, "Action=TerminateInstances&Version=2016-11-15")
    assert status == 400 and error_code(body) == "InvalidParameterCombination", body
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    assert code(ec2.create_tags, Resources=[vpc], Tags=[
        {"Key": f"k{i}", "Value": "v"} for i in range(51)]) == "TagLimitExceeded"
    assert code(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                BlockDeviceMappings=[{"DeviceName": "/dev/xvda"}]) == "MissingParameter"


def test_import_key_pair_takes_openssh_rfc4716_and_pem(ec2) -> None:  # noqa: ANN001
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    openssh = public.public_bytes(serialization.Encoding.OpenSSH,
                                  serialization.PublicFormat.OpenSSH)
    blob = base64.b64encode(base64.b64decode(openssh.split()[1])).decode()
    rfc4716 = ("---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"a long comment that goes \\\n"
               " on\"\n" + "\n".join(blob[i:i + 70] for i in range(0, len(blob), 70))
               + "\n---- END SSH2 PUBLIC KEY ----\n").encode()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    prints = {ec2.import_key_pair(KeyName=f"fmt-{n}", PublicKeyMaterial=material)[
        "KeyFingerprint"] for n, material in enumerate((openssh, rfc4716, pem))}
    assert len(prints) == 1, "one key, whatever format it came in"
    assert code(ec2.import_key_pair, KeyName="fmt-bad",
                PublicKeyMaterial=b"---- BEGIN SSH2 PUBLIC KEY ----\n!!\n") == "InvalidKey.Format"
    for n in range(3):
        ec2.delete_key_pair(KeyName=f"fmt-{n}")
