"""ModifyInstanceAttribute refuses what it would not apply, and accepts the current value."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code_of(call, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"]


def attribute(ec2, iid: str, name: str) -> dict:  # noqa: ANN001
    out = ec2.describe_instance_attribute(InstanceId=iid, Attribute=name)
    out.pop("ResponseMetadata")
    out.pop("InstanceId")
    return out


def test_unapplied_members_are_refused_unless_unchanged(ec2, launch):  # noqa: ANN001
    iid = launch()["Instances"][0]["InstanceId"]
    modify = ec2.modify_instance_attribute
    refused = [
        {"EbsOptimized": {"Value": True}},
        {"EnaSupport": {"Value": False}},
        {"DisableApiStop": {"Value": True}},
        {"InstanceInitiatedShutdownBehavior": {"Value": "terminate"}},
        {"SriovNetSupport": {"Value": "simple"}},
        {"Kernel": {"Value": "aki-12345678"}},
        {"Ramdisk": {"Value": "ari-12345678"}},
        {"EnclaveOptions": {"Enabled": True}},
        {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "VirtualName": "ephemeral0"}]},
    ]
    for change in refused:
        assert code_of(modify, InstanceId=iid, **change) == "UnsupportedOperation", change
    # What every instance already reports is accepted as a no-op.
    for change in [
        {"EbsOptimized": {"Value": False}},
        {"EnaSupport": {"Value": True}},
        {"DisableApiStop": {"Value": False}},
        {"InstanceInitiatedShutdownBehavior": {"Value": "stop"}},
        {"EnclaveOptions": {"Enabled": False}},
        {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True}}]},
    ]:
        modify(InstanceId=iid, **change)
    # SourceDestCheck is applied (the primary interface's; see tests/test_route_targets.py).
    assert attribute(ec2, iid, "sourceDestCheck") == {"SourceDestCheck": {"Value": True}}
    modify(InstanceId=iid, SourceDestCheck={"Value": False})
    assert attribute(ec2, iid, "sourceDestCheck") == {"SourceDestCheck": {"Value": False}}
    modify(InstanceId=iid, SourceDestCheck={"Value": True})
    assert attribute(ec2, iid, "instanceInitiatedShutdownBehavior") == {
        "InstanceInitiatedShutdownBehavior": {"Value": "stop"}}
    assert attribute(ec2, iid, "enclaveOptions") == {"EnclaveOptions": {"Enabled": False}}
    assert attribute(ec2, iid, "sriovNetSupport") == {"SriovNetSupport": {}}
    # The root volume's DeleteOnTermination changes (as on EC2); a device it lacks is refused.
    modify(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False}}])
    mapping = attribute(ec2, iid, "blockDeviceMapping")["BlockDeviceMappings"][0]
    assert mapping["DeviceName"] == "/dev/xvda" and mapping["Ebs"]["DeleteOnTermination"] is False
    modify(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True}}])
    assert code_of(modify, InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}]) == \
        "InvalidInstanceAttributeValue"

    # One attribute per call, as on AWS: a second member refuses the whole call (even an
    # unchanged one), and the supported member is not applied.
    for other in ({"Value": False}, {"Value": True}):
        assert code_of(modify, InstanceId=iid, DisableApiTermination={"Value": True},
                       SourceDestCheck=other) == "InvalidParameterCombination"
    assert attribute(ec2, iid, "disableApiTermination") == {"DisableApiTermination": {"Value": False}}
    modify(InstanceId=iid, DisableApiTermination={"Value": True})
    assert attribute(ec2, iid, "disableApiTermination") == {"DisableApiTermination": {"Value": True}}
    modify(InstanceId=iid, DisableApiTermination={"Value": False})


def test_attribute_value_form(ec2, launch):  # noqa: ANN001
    iid = launch()["Instances"][0]["InstanceId"]
    modify = ec2.modify_instance_attribute
    modify(InstanceId=iid, Attribute="sourceDestCheck", Value="true")
    modify(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior", Value="stop")
    modify(InstanceId=iid, Attribute="sourceDestCheck", Value="false")
    assert attribute(ec2, iid, "sourceDestCheck") == {"SourceDestCheck": {"Value": False}}
    modify(InstanceId=iid, Attribute="sourceDestCheck", Value="true")
    for name, value in [("ebsOptimized", "true"),
                        ("instanceInitiatedShutdownBehavior", "terminate"),
                        ("kernel", "aki-12345678"), ("rootDeviceName", "/dev/sda1"),
                        ("blockDeviceMapping", "x")]:
        assert code_of(modify, InstanceId=iid, Attribute=name, Value=value) == \
            "UnsupportedOperation", name
    modify(InstanceId=iid, Attribute="disableApiTermination", Value="true")
    assert attribute(ec2, iid, "disableApiTermination") == {"DisableApiTermination": {"Value": True}}
    modify(InstanceId=iid, Attribute="disableApiTermination", Value="false")
