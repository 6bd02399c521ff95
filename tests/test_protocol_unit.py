"""The model-driven parser and serializer, without a server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from gureum.api.exceptions import InvalidParameterValue, MissingParameter, UnknownParameter
from gureum.api.models import service_model
from gureum.api.query_parser import QueryParser
from gureum.api.xml_serializer import XmlSerializer

EC2 = service_model("ec2")
ROOT = Path(__file__).resolve().parent.parent


def round_trip(action: str, params: dict) -> dict:
    """botocore serializes exactly as a client would; our parser must read it back."""
    op = EC2.operation_model(action)
    body = create_serializer("ec2").serialize_to_request(params, op)["body"]
    return QueryParser("ec2").parse(op, {k: str(v) for k, v in body.items()})


def test_parser_reads_what_botocore_writes():
    params = {
        "ImageId": "ami-0123456789abcdef0", "MinCount": 1, "MaxCount": 2, "InstanceType": "t3.micro",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"},
                                                                     {"Key": "c", "Value": ""}]}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20}}],
        "SecurityGroupIds": ["sg-1", "sg-2"], "DisableApiTermination": True,
    }
    parsed = round_trip("RunInstances", params)
    assert parsed == params


def test_filters_round_trip():
    params = {"Filters": [{"Name": "tag:Name", "Values": ["web", "db"]}], "MaxResults": 10}
    assert round_trip("DescribeInstances", params) == params


def test_parser_errors():
    op = EC2.operation_model("RunInstances")
    parser = QueryParser("ec2")
    with pytest.raises(MissingParameter):
        parser.parse(op, {"Action": "RunInstances", "MinCount": "1"})
    with pytest.raises(InvalidParameterValue):
        parser.parse(op, {"MinCount": "x", "MaxCount": "1"})
    with pytest.raises(InvalidParameterValue):
        parser.parse(op, {"MinCount": "1", "MaxCount": "99999999999"})
    with pytest.raises(UnknownParameter):
        parser.parse(op, {"MinCount": "1", "MaxCount": "1", "Nope": "1"})
    with pytest.raises(InvalidParameterValue):
        parser.parse(op, {"MinCount": "1", "MaxCount": "1", "DisableApiTermination": "maybe"})


def test_serializer_output_parses_with_botocore():
    op = EC2.operation_model("DescribeInstances")
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    result = {"Reservations": [{"ReservationId": "r-1", "OwnerId": "123456789012", "Instances": [
        {"InstanceId": "i-1", "State": {"Code": 16, "Name": "running"}, "LaunchTime": when,
         "Tags": [{"Key": "k", "Value": "<&>"}], "EbsOptimized": False}]}]}
    body = XmlSerializer("ec2", "http://ec2.amazonaws.com/doc/2016-11-15").response(op, result, "req-1")
    parsed = create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)
    inst = parsed["Reservations"][0]["Instances"][0]
    assert inst["LaunchTime"] == when and inst["Tags"] == [{"Key": "k", "Value": "<&>"}]
    assert inst["EbsOptimized"] is False and inst["State"]["Code"] == 16


def test_coverage_page_is_current():
    from gureum.cli.coverage import render

    assert (ROOT / "docs" / "COVERAGE.md").read_text() == render(), (
        "docs/COVERAGE.md is stale: run `make coverage`")
