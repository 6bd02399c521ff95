"""Strict serializer mode: an output key its shape does not have is a bug, not silence."""

from __future__ import annotations

import pytest
from botocore.parsers import create_parser

from gureum.api import xml_serializer
from gureum.api.models import service_model
from gureum.api.xml_serializer import SerializerError, XmlSerializer
from gureum.errors import GureumError

EC2 = service_model("ec2")
NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15"


def serialize(action: str, result: dict) -> dict:
    op = EC2.operation_model(action)
    body = XmlSerializer("ec2", NAMESPACE).response(op, result, "req-1")
    return create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 200},
                                      op.output_shape)


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xml_serializer, "STRICT", True)


def test_known_keys_serialize(strict: None) -> None:
    parsed = serialize("DescribeInstanceAttribute",
                       {"InstanceId": "i-1", "SourceDestCheck": {"Value": True}})
    assert parsed["InstanceId"] == "i-1" and parsed["SourceDestCheck"] == {"Value": True}


def test_unknown_top_level_key_raises(strict: None) -> None:
    with pytest.raises(SerializerError, match="'SourceDestChek'") as info:
        serialize("DescribeInstanceAttribute", {"InstanceId": "i-1", "SourceDestChek": {"Value": True}})
    assert isinstance(info.value, GureumError)


def test_unknown_nested_key_raises(strict: None) -> None:
    result = {"Reservations": [{"ReservationId": "r-1", "Instances": [
        {"InstanceId": "i-1", "State": {"Code": 16, "Name": "running", "Nme": "x"}}]}]}
    with pytest.raises(SerializerError, match="InstanceState has no member 'Nme'"):
        serialize("DescribeInstances", result)


def test_unknown_key_is_dropped_when_not_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xml_serializer, "STRICT", False)
    parsed = serialize("DescribeInstanceAttribute", {"InstanceId": "i-1", "Bogus": 1})
    assert parsed["InstanceId"] == "i-1" and "Bogus" not in parsed
