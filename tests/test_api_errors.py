"""Bad input gets AWS's exact error codes, through boto3."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code_of(call, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    return err.value.response["Error"]["Code"]


def test_instance_id_errors(ec2):
    assert code_of(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"]) == "InvalidInstanceID.NotFound"
    assert code_of(ec2.describe_instances, InstanceIds=["nope"]) == "InvalidInstanceID.Malformed"
    assert code_of(ec2.stop_instances, InstanceIds=["i-0123456789abcdef0"]) == "InvalidInstanceID.NotFound"
    assert code_of(ec2.terminate_instances, InstanceIds=["i-xyz"]) == "InvalidInstanceID.Malformed"


def test_not_found_lists_every_missing_id(ec2):
    with pytest.raises(ClientError) as err:
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0", "i-0123456789abcdef1"])
    message = err.value.response["Error"]["Message"]
    assert "i-0123456789abcdef0" in message and "i-0123456789abcdef1" in message


def test_run_instances_validation(ec2, image_id, key_pair):
    base = {"ImageId": image_id, "MinCount": 1, "MaxCount": 1}
    assert code_of(ec2.run_instances, **{**base, "ImageId": "ami-0123456789abcdef0"}) == "InvalidAMIID.NotFound"
    assert code_of(ec2.run_instances, **{**base, "ImageId": "debian"}) == "InvalidAMIID.Malformed"
    assert code_of(ec2.run_instances, **{**base, "KeyName": "nobody"}) == "InvalidKeyPair.NotFound"
    assert code_of(ec2.run_instances, **{**base, "InstanceType": "x9.huge"}) == "InvalidParameterValue"
    assert code_of(ec2.run_instances, **{**base, "MinCount": 3, "MaxCount": 2}) == "InvalidParameterValue"
    assert code_of(ec2.run_instances, **{**base, "MinCount": 0}) == "InvalidParameterValue"
    assert code_of(ec2.run_instances, **{**base, "MinCount": 100, "MaxCount": 100}) == "InstanceLimitExceeded"
    assert code_of(ec2.run_instances, **{**base, "SubnetId": "subnet-0123456789abcdef0"}) == "InvalidSubnetID.NotFound"
    assert code_of(ec2.run_instances, **{**base, "SecurityGroupIds": ["sg-0123456789abcdef0"]}) == "InvalidGroup.NotFound"
    assert code_of(ec2.run_instances, **{**base, "UserData": "x" * 20000}) == "InvalidParameterValue"
    assert code_of(ec2.run_instances, **{**base, "BlockDeviceMappings": [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 0}}]}) == "InvalidParameterValue"
    assert code_of(ec2.run_instances, **{**base, "TagSpecifications": [
        {"ResourceType": "instance", "Tags": [{"Key": "aws:x", "Value": "y"}]}]}) == "InvalidParameterValue"
    assert code_of(ec2.run_instances, **base, DryRun=True) == "DryRunOperation"


def test_state_errors(ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])
    assert code_of(ec2.stop_instances, InstanceIds=[iid]) == "IncorrectInstanceState"
    assert code_of(ec2.start_instances, InstanceIds=[iid]) == "IncorrectInstanceState"
    assert code_of(ec2.reboot_instances, InstanceIds=[iid]) == "IncorrectInstanceState"
    assert code_of(ec2.modify_instance_attribute, InstanceId=iid,
                   InstanceType={"Value": "t3.small"}) == "IncorrectInstanceState"


def test_disable_api_termination(ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    assert code_of(ec2.terminate_instances, InstanceIds=[iid]) == "OperationNotPermitted"
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})


def test_key_pair_errors(ec2, key_pair):
    assert code_of(ec2.create_key_pair, KeyName=key_pair[0]) == "InvalidKeyPair.Duplicate"
    assert code_of(ec2.describe_key_pairs, KeyNames=["missing-key"]) == "InvalidKeyPair.NotFound"
    assert code_of(ec2.import_key_pair, KeyName="bad", PublicKeyMaterial=b"not a key") == "InvalidKey.Format"


def test_filter_and_paging_errors(ec2):
    assert code_of(ec2.describe_instances, Filters=[{"Name": "no-such-filter", "Values": ["x"]}]) == "InvalidParameterValue"
    assert code_of(ec2.describe_instances, MaxResults=2) == "InvalidParameterValue"
    assert code_of(ec2.describe_instances, NextToken="!!garbage!!") == "InvalidPaginationToken"
    assert code_of(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"],
                   MaxResults=5) == "InvalidParameterCombination"
    assert code_of(ec2.describe_images, ImageIds=["ami-0123456789abcdef0"]) == "InvalidAMIID.NotFound"
    assert code_of(ec2.describe_instance_types, InstanceTypes=["x9.huge"]) == "InvalidInstanceType"
    assert code_of(ec2.describe_regions, RegionNames=["mars-1"]) == "InvalidParameterValue"


def test_unimplemented_and_unknown_actions(ec2):
    with pytest.raises(ClientError) as err:
        ec2.describe_fleets()
    assert err.value.response["Error"]["Code"] == "NotImplemented"
    assert "DescribeFleets" in err.value.response["Error"]["Message"]
