"""Model-driven parser and serializer for the document protocols: `json` (AWS JSON
1.0/1.1: ACM and most newer services) and `smithy-rpc-v2-cbor` (CloudWatch, as current
botocore speaks it).

JSON: the action comes from the `X-Amz-Target` header (`<targetPrefix>.<Action>`); blobs
travel as base64 and timestamps as epoch seconds. CBOR: the action comes from the path
(`/service/<targetPrefix>/operation/<Action>`); blobs are byte strings and timestamps
tag-1 epoch values (cbor2 does the encoding). Either way the input is checked against
botocore's input shape (unknown members refused, types and required members checked),
the output is the shape's members, and errors are `{"__type": code, "message": ...}`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

import cbor2
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from gureum.api import xml_serializer
from gureum.api.exceptions import (
    InvalidParameterValue,
    MissingParameter,
    UnknownParameter,
    ValidationException,
)
from gureum.api.xml_serializer import SerializerError

_CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/?]+)$")


def json_action(headers: dict[str, str], target_prefix: str) -> str | None:
    target = headers.get("x-amz-target", "")
    prefix, _, action = target.rpartition(".")
    return action if prefix == target_prefix and action else None


def cbor_action(path: str, target_prefix: str) -> str | None:
    match = _CBOR_PATH.match(path)
    return match.group(2) if match and match.group(1) == target_prefix else None


class DocumentParser:
    def __init__(self, cbor: bool) -> None:
        self.cbor = cbor

    def _decode(self, body: bytes) -> Any:
        if not body:
            return {}
        return cbor2.loads(body) if self.cbor else json.loads(body)

    def parse(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        try:
            return self._parse(operation, body)
        except (InvalidParameterValue, MissingParameter, UnknownParameter) as err:
            # Services whose model knows no such code (ACM, ...) answer bad input with
            # their ValidationException, as AWS does.
            known = {s.name for s in operation.service_model.error_shapes}
            if "ValidationException" in known and not known & {
                    err.code, "InvalidParameterValue", "InvalidParameterValueException"}:
                raise ValidationException(err.message) from None
            raise

    def _parse(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        try:
            data = self._decode(body)
        except (ValueError, UnicodeDecodeError, cbor2.CBORDecodeError):
            kind = "CBOR" if self.cbor else "JSON"
            raise InvalidParameterValue(f"The request body is not valid {kind}") from None
        if not isinstance(data, dict):
            raise InvalidParameterValue("The request body must be a JSON object")
        shape = operation.input_shape
        if shape is None:
            if data:
                raise UnknownParameter(f"The parameter {sorted(data)[0]} is not recognized")
            return {}
        return self._structure(shape, data, "")

    def _structure(self, shape: StructureShape, data: Any, path: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InvalidParameterValue(f"{path or 'The request'} must be an object")
        unknown = set(data) - set(shape.members)
        if unknown:
            raise UnknownParameter(f"The parameter {path}{sorted(unknown)[0]} is not recognized")
        for name in shape.required_members:
            if data.get(name) is None:
                raise MissingParameter(f"The request must contain the parameter {path}{name}")
        return {name: self._value(shape.members[name], value, f"{path}{name}")
                for name, value in data.items() if value is not None}

    def _value(self, shape: Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        if isinstance(shape, StructureShape):
            return self._structure(shape, value, path + ".")
        if isinstance(shape, ListShape):
            if not isinstance(value, list):
                raise InvalidParameterValue(f"{path} must be a list")
            return [self._value(shape.member, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(shape, MapShape):
            if not isinstance(value, dict):
                raise InvalidParameterValue(f"{path} must be a map")
            return {k: self._value(shape.value, v, f"{path}.{k}") for k, v in value.items()}
        if kind == "blob":
            if isinstance(value, bytes):
                return value
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvalidParameterValue(f"{path} must be base64") from None
        if kind == "timestamp":
            if isinstance(value, dt.datetime):
                return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InvalidParameterValue(f"{path} must be a timestamp")
            return dt.datetime.fromtimestamp(value, dt.UTC)
        expected = {"string": str, "boolean": bool, "integer": int, "long": int,
                    "double": (int, float), "float": (int, float)}.get(kind)
        if expected is not None and (not isinstance(value, expected) or (
                expected is int and isinstance(value, bool))):
            raise InvalidParameterValue(f"{path} must be of type {kind}")
        if kind == "string" and shape.enum and value not in shape.enum:
            raise InvalidParameterValue(
                f"{path} must be one of: {', '.join(shape.enum)}")
        return value


class DocumentSerializer:
    def __init__(self, cbor: bool) -> None:
        self.cbor = cbor

    def _encode(self, document: dict[str, Any]) -> bytes:
        if self.cbor:
            return cbor2.dumps(document, datetime_as_timestamp=True, timezone=dt.UTC)
        return json.dumps(document).encode()

    def response(self, operation: OperationModel, result: dict[str, Any], request_id: str) -> bytes:
        shape = operation.output_shape
        body = self._structure(shape, result, operation.name) if shape is not None else {}
        return self._encode(body)

    def error(self, code: str, message: str, request_id: str) -> bytes:
        return self._encode({"__type": code, "message": message})

    def _structure(self, shape: StructureShape, value: dict[str, Any], path: str) -> dict[str, Any]:
        out = {}
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                if xml_serializer.STRICT:
                    raise SerializerError(f"{path}: {name!r} is not a member of {shape.name}")
                continue
            if item is not None:
                out[name] = self._value(member, item, f"{path}.{name}")
        return out

    def _value(self, shape: Shape, value: Any, path: str) -> Any:
        if isinstance(shape, StructureShape):
            return self._structure(shape, value, path)
        if isinstance(shape, ListShape):
            return [self._value(shape.member, v, path) for v in value]
        if isinstance(shape, MapShape):
            return {k: self._value(shape.value, v, path) for k, v in value.items()}
        if shape.type_name == "blob":
            raw = value if isinstance(value, bytes) else value.encode()
            return raw if self.cbor else base64.b64encode(raw).decode()
        if shape.type_name == "timestamp" and isinstance(value, dt.datetime):
            return value if self.cbor else value.timestamp()
        return value
