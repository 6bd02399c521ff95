"""Model-driven XML serializer for the `ec2` and `query` protocols.

Handlers return plain dicts keyed by the output shape's member names; this walks the
shape and writes each member under its locationName. Strings are joined, not built as a
tree: DescribeInstances of thousands of instances stays fast.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any
from xml.sax.saxutils import escape as _escape

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

# Characters XML 1.0 cannot carry at all, not even as references.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    return _escape(_INVALID_XML.sub("\ufffd", text))


class XmlSerializer:
    def __init__(self, protocol: str, namespace: str) -> None:
        self.ec2 = protocol == "ec2"
        self.namespace = namespace

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
        for name, member in shape.members.items():
            item = value.get(name)
            if item is None:
                continue
            self._value(member, item, member.serialization.get("name", name), out)

    def _value(self, shape: Shape, value: Any, tag: str, out: list[str]) -> None:
        if isinstance(shape, StructureShape):
            out.append(f"<{tag}>")
            self._members(shape, value, out)
            out.append(f"</{tag}>")
        elif isinstance(shape, ListShape):
            item_tag = shape.member.serialization.get("name", "member")
            if shape.serialization.get("flattened"):
                for item in value:
                    self._value(shape.member, item, tag, out)
                return
            out.append(f"<{tag}>")
            for item in value:
                self._value(shape.member, item, item_tag, out)
            out.append(f"</{tag}>")
        elif isinstance(shape, MapShape):
            out.append(f"<{tag}>")
            for k, v in value.items():
                out.append("<entry>")
                self._value(shape.key, k, shape.key.serialization.get("name", "key"), out)
                self._value(shape.value, v, shape.value.serialization.get("name", "value"), out)
                out.append("</entry>")
            out.append(f"</{tag}>")
        else:
            out.append(f"<{tag}>{_scalar(shape, value)}</{tag}>")


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
