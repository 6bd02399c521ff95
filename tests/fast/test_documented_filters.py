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
