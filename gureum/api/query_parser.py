"""Model-driven parser for the `ec2` and `query` protocols (flat form parameters).

The input shape from botocore's model says where each member lives: for `ec2`, a list
`Foo` arrives as `Foo.1`, `Foo.2` (named by queryName or capitalised locationName); for
`query`, as `Foo.member.1`. Every parameter must be consumed: leftovers are
`UnknownParameter`, as on AWS.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from gureum.api.exceptions import (
    InvalidParameterValue,
    MissingParameter,
    UnknownParameter,
)

ENVELOPE_PARAMS = {"Action", "Version"}
MAX_LIST_INDEX = 1000
# Enums whose bad values AWS answers with a more specific code, raised by the handler.
ENUMS_CHECKED_BY_HANDLERS = {"InstanceType"}
# Required members whose absence AWS answers with another code, raised by the handler
# (TerminateInstances without ids is InvalidParameterCombination).
REQUIRED_CHECKED_BY_HANDLERS = {("TerminateInstances", "InstanceIds")}
_INDEX = re.compile(r"^([1-9][0-9]{0,5})(?:\.|$)")


class QueryParser:
    def __init__(self, protocol: str) -> None:
        self.ec2 = protocol == "ec2"

    def parse(self, operation: OperationModel, params: dict[str, str]) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            leftovers = set(params) - ENVELOPE_PARAMS
            if leftovers:
                raise UnknownParameter(f"The parameter {sorted(leftovers)[0]} is not recognized")
            return {}
        consumed: set[str] = set(ENVELOPE_PARAMS)
        skip = frozenset(m for op, m in REQUIRED_CHECKED_BY_HANDLERS if op == operation.name)
        result = self._structure(shape, params, "", consumed, top=True, skip=skip)
        leftovers = set(params) - consumed
        if leftovers:
            raise UnknownParameter(f"The parameter {sorted(leftovers)[0]} is not recognized")
        return result or {}

    # -- names ---------------------------------------------------------------------
    def _name(self, member: Shape, default: str) -> str:
        ser = member.serialization
        if self.ec2:
            if "queryName" in ser:
                return ser["queryName"]
            if "name" in ser:
                return ser["name"][0].upper() + ser["name"][1:]
            return default
        return ser.get("name", default)

    # -- shapes ----------------------------------------------------------------------
    def _value(self, shape: Shape, params: dict[str, str], key: str, consumed: set[str]) -> Any:
        if isinstance(shape, StructureShape):
            return self._structure(shape, params, key + ".", consumed)
        if isinstance(shape, ListShape):
            return self._list(shape, params, key, consumed)
        if isinstance(shape, MapShape):
            return self._map(shape, params, key, consumed)
        if key not in params:
            return None
        consumed.add(key)
        return self._scalar(shape, params[key], key)

    def _structure(self, shape: StructureShape, params: dict[str, str], prefix: str,
                   consumed: set[str], top: bool = False,
                   skip: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        if not top and not any(k.startswith(prefix) for k in params):
            return None
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            value = self._value(member, params, prefix + self._name(member, name), consumed)
            if value is not None:
                out[name] = value
        for name in shape.required_members:
            if name not in out and name not in skip:
                where = prefix + self._name(shape.members[name], name)
                raise MissingParameter(f"The request must contain the parameter {where}")
        return out

    def _indexes(self, params: dict[str, str], prefix: str) -> list[int]:
        found = set()
        for key in params:
            if key.startswith(prefix):
                m = _INDEX.match(key[len(prefix):])
                if m:
                    index = int(m.group(1))
                    if index > MAX_LIST_INDEX:
                        raise InvalidParameterValue(
                            f"List index {index} of {prefix.rstrip('.')} exceeds {MAX_LIST_INDEX}")
                    found.add(index)
        return sorted(found)

    def _list(self, shape: ListShape, params: dict[str, str], key: str,
              consumed: set[str]) -> list[Any] | None:
        if self.ec2 or shape.serialization.get("flattened"):
            prefix = key + "."
        else:
            prefix = key + "." + shape.member.serialization.get("name", "member") + "."
        if not self.ec2 and key in params and params[key] == "":
            consumed.add(key)  # query protocol's explicit empty list
            return []
        items = []
        for index in self._indexes(params, prefix):
            value = self._value(shape.member, params, f"{prefix}{index}", consumed)
            if value is not None:
                items.append(value)
        return items or None

    def _map(self, shape: MapShape, params: dict[str, str], key: str,
             consumed: set[str]) -> dict[str, Any] | None:
        prefix = key + "." if shape.serialization.get("flattened") else key + ".entry."
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        out = {}
        for index in self._indexes(params, prefix):
            k = self._value(shape.key, params, f"{prefix}{index}.{kname}", consumed)
            v = self._value(shape.value, params, f"{prefix}{index}.{vname}", consumed)
            if k is not None:
                out[k] = v
        return out or None

    def _scalar(self, shape: Shape, raw: str, key: str) -> Any:
        kind = shape.type_name
        try:
            if kind in ("integer", "long"):
                value: Any = int(raw)
                if kind == "integer" and not -(2**31) <= value < 2**31:
                    raise ValueError
            elif kind in ("float", "double"):
                value = float(raw)
            elif kind == "boolean":
                if raw.lower() not in ("true", "false"):
                    raise ValueError
                value = raw.lower() == "true"
            elif kind == "timestamp":
                value = _timestamp(raw)
            elif kind == "blob":
                value = base64.b64decode(raw, validate=True)
            else:
                value = raw
        except (ValueError, binascii.Error):
            raise InvalidParameterValue(
                f"Value ({raw[:256]}) for parameter {key} is invalid. Expected a {kind}."
            ) from None
        if (kind == "string" and "enum" in shape.metadata and value not in shape.enum
                and shape.name not in ENUMS_CHECKED_BY_HANDLERS):
            raise InvalidParameterValue(
                f"Value ({raw[:256]}) for parameter {key} is invalid. "
                f"Valid values: {', '.join(shape.enum[:40])}")
        return value


def _timestamp(raw: str) -> dt.datetime:
    if raw.replace(".", "", 1).isdigit():
        return dt.datetime.fromtimestamp(float(raw), dt.UTC)
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
