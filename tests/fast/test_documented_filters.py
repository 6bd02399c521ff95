"""Every filter name EC2 documents for an implemented Describe call is accepted (those
gureum does not evaluate match nothing), and an undocumented one is refused, as on AWS.
Generated from botocore's own documentation of each action's Filters."""

from __future__ import annotations

import botocore.session
from botocore import xform_name
from botocore.exceptions import ClientError
from helpers import error_code as code

from gureum.api.dispatch import HANDLERS, load_handlers
from gureum.services.ec2 import filters
from gureum.testing_inprocess import FastCloud


def test_every_documented_filter_is_accepted(fast: FastCloud, ec2) -> None:  # noqa: ANN001
    load_handlers()
    model = botocore.session.get_session().get_service_model("ec2")
    checked = 0
    for service, action in sorted(HANDLERS):
        if service != "ec2":
            continue
        shape = model.operation_model(action).input_shape
        if shape is None or "Filters" not in shape.members or shape.required_members:
            continue
        names = filters.documented("ec2", action)
        call = getattr(ec2, xform_name(action))
        try:
            call()
        except ClientError:  # needs more than filters (DescribeLaunchTemplateVersions)
            continue
        for name in sorted(names):
            call(Filters=[{"Name": name, "Values": ["gureum-matches-nothing"]}])
            checked += 1
        assert code(call, Filters=[{"Name": "no-such-filter", "Values": ["x"]}]) == \
            "InvalidParameterValue", action
    assert checked > 400, checked


def test_an_unevaluated_filter_matches_nothing(ec2, image_id) -> None:  # noqa: ANN001
    # 'affinity' (Dedicated Hosts) is documented; no instance here has one.
    assert ec2.describe_instances(Filters=[{"Name": "affinity", "Values": ["default"]}])[
        "Reservations"] == []


def test_instance_filters_see_what_the_view_reports(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    from gureum.testing_inprocess import wait_state

    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    view = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    eni = view["NetworkInterfaces"][0]
    for name, value in (("root-device-type", "ebs"), ("virtualization-type", "hvm"),
                        ("block-device-mapping.volume-id",
                         view["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]),
                        ("network-interface.network-interface-id", eni["NetworkInterfaceId"]),
                        ("network-interface.mac-address", eni["MacAddress"]),
                        ("metadata-options.http-tokens", view["MetadataOptions"]["HttpTokens"]),
                        ("tenancy", "default"), ("monitoring-state", "disabled")):
        found = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
            {"Name": name, "Values": [str(value)]}, {"Name": "instance-id", "Values": [iid]}])[
            "Reservations"] for i in r["Instances"]]
        assert found == [iid], name
    ec2.terminate_instances(InstanceIds=[iid])
