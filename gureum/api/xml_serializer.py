"""Model-driven XML serializer for the `ec2` and `query` protocols.

Handlers return plain dicts keyed by the output shape's member names; this walks the
shape and writes each member under its locationName. Strings are joined, not built as a
tree: DescribeInstances of thousands of instances stays fast.

A key that is not a member of its shape is dropped, unless `STRICT` is set
(`GUREUM_STRICT_SERIALIZER=1`, as the test harness does): then it raises `SerializerError`,
so a handler's typo fails loudly (the server answers `InternalError`).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape as _escape

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from gureum.errors import GureumError

# Read at each structure written, so tests may flip it.
STRICT = os.environ.get("GUREUM_STRICT_SERIALIZER") == "1"

# Characters XML 1.0 cannot carry at all, not even as references.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
Writer = Callable[[Any, list[str]], None]


class SerializerError(GureumError):
    """A handler returned a key its output shape does not have: a bug of gureum's."""


def escape(text: str) -> str:
    if not _NEEDS_ESCAPE.search(text):
        return text
    return _escape(_INVALID_XML.sub("\ufffd", text))


class XmlSerializer:
    def __init__(self, protocol: str, namespace: str) -> None:
        self.ec2 = protocol == "ec2"
        self.namespace = namespace
        self._plans: dict[tuple[str, str], Writer] = {}

    def response(self, operation: OperationModel, result: dict[str, Any], request_id: str) -> bytes:
        name = operation.name
        out: list[str] = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{name}Response xmlns="{self.namespace}/">']
        shape = operation.output_shape
        if self.ec2:
            out.append(f"<requestId>{request_id}</requestId>")
            if shape is not None:
                self._members(shape, result, out)
        else:
            if shape is not None:
                out.append(f"<{name}Result>")
                self._members(shape, result, out)
                out.append(f"</{name}Result>")
            out.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>")
        out.append(f"</{name}Response>")
        return "".join(out).encode()

    def error(self, code: str, message: str, request_id: str) -> bytes:
        msg = escape(message)
        if self.ec2:
            return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}'
                    f"</Code><Message>{msg}</Message></Error></Errors>"
                    f"<RequestID>{request_id}</RequestID></Response>").encode()
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{self.namespace}/">'
                f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()

    def _members(self, shape: StructureShape, value: dict[str, Any], out: list[str]) -> None:
        self._plan(shape)(value, out)

    def _plan(self, shape: Shape) -> Writer:
        """A writer for one shape's contents, built once per shape and cached: walking
        botocore's model for every value dominated large responses."""
        key = (shape.name, shape.type_name)
        plan = self._plans.get(key)
        if plan is None:
            self._plans[key] = _pending  # recursive shapes resolve through the cache
            plan = self._build(shape)
            self._plans[key] = plan
        return plan

    def _lazy(self, shape: Shape) -> Writer:
        key = (shape.name, shape.type_name)
        return lambda value, out: self._plans[key](value, out)

    def _element(self, shape: Shape, tag: str) -> Writer:
        """Writes <tag>...</tag> for a value of `shape`."""
        open_, close = f"<{tag}>", f"</{tag}>"
        if isinstance(shape, (StructureShape, ListShape, MapShape)):
            if isinstance(shape, ListShape) and shape.serialization.get("flattened"):
                item = self._element(shape.member, tag)

                def flat(value: Any, out: list[str]) -> None:
                    for element in value:
                        item(element, out)
                return flat
            built = self._plan(shape)
            # A shape still being built (a recursive one) is found through the cache at
            # write time; any other is called directly.
            inner = self._lazy(shape) if built is _pending else built

            def nested(value: Any, out: list[str]) -> None:
                out.append(open_)
                inner(value, out)
                out.append(close)
            return nested
        if shape.type_name == "string":  # most scalars: no converter call per value
            needs_escape = _NEEDS_ESCAPE.search

            def string(value: Any, out: list[str]) -> None:
                if type(value) is not str:
                    value = str(value)
                out.append(open_ + (escape(value) if needs_escape(value) else value) + close)
            return string
        convert = _scalar_converter(shape)

        def scalar(value: Any, out: list[str]) -> None:
            out.append(open_ + convert(value) + close)
        return scalar

    def _build(self, shape: Shape) -> Writer:
        if isinstance(shape, StructureShape):
            members = [(name, self._element(member, member.serialization.get("name", name)))
                       for name, member in shape.members.items()]
            known = frozenset(shape.members)

            def structure(value: dict[str, Any], out: list[str]) -> None:
                if STRICT and not known.issuperset(value):
                    unknown = sorted(str(k) for k in value if k not in known)
                    raise SerializerError(
                        f"{shape.name} has no member {', '.join(map(repr, unknown))} "
                        f"(members: {', '.join(sorted(known))})")
                get = value.get
                for name, write in members:
                    item = get(name)
                    if item is not None:
                        write(item, out)
            return structure
        if isinstance(shape, ListShape):
            item = self._element(shape.member, shape.member.serialization.get("name", "member"))

            def items(value: list[Any], out: list[str]) -> None:
                for element in value:
                    item(element, out)
            return items
        if isinstance(shape, MapShape):
            key_w = self._element(shape.key, shape.key.serialization.get("name", "key"))
            value_w = self._element(shape.value, shape.value.serialization.get("name", "value"))

            def entries(value: dict[Any, Any], out: list[str]) -> None:
                for k, v in value.items():
                    out.append("<entry>")
                    key_w(k, out)
                    value_w(v, out)
                    out.append("</entry>")
            return entries
        raise TypeError(f"no plan for scalar shape {shape.name}")


def _pending(value: Any, out: list[str]) -> None:
    raise RuntimeError("shape plan used while being built")


def _scalar_converter(shape: Shape) -> Callable[[Any], str]:
    kind = shape.type_name
    if kind == "boolean":
        return lambda value: "true" if value else "false"
    if kind in ("integer", "long") :
        return lambda value: str(value) if type(value) is int else escape(str(value))
    if kind == "string":
        return lambda value: escape(value) if type(value) is str else escape(str(value))
    return lambda value: _scalar(shape, value)


def _scalar(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC)
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return escape(str(value))
    if kind == "blob":
        raw = value if isinstance(value, bytes) else str(value).encode()
        return base64.b64encode(raw).decode()
    return escape(str(value))
