"""How agent calls travel between processes: JSON, shaped by the contract's own type hints.

`encode` turns any contract value into JSON-ready data; `decode(data, hint)` rebuilds it
from the parameter or return annotation it is bound to, so no type is named on the wire
and a new contract type needs no code here. Errors travel as their class name and fields
and are rebuilt as the same `HostError` subclass.
"""

from __future__ import annotations

import base64
import dataclasses
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from gureum import errors
from gureum.agent import contract


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(data: Any, hint: Any) -> Any:
    """Rebuild `data` as the type `hint` names (a contract annotation)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        arms = [a for a in args if a is not type(None)]
        return decode(data, arms[0]) if len(arms) == 1 else data
    if origin is tuple:
        return tuple(decode(v, args[0]) for v in data)
    if origin is list:
        return [decode(v, args[0] if args else Any) for v in data]
    if origin is dict:
        return {k: decode(v, args[1] if args else Any) for k, v in data.items()}
    if hint is bytes:
        return base64.b64decode(data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        fields = typing.get_type_hints(hint)
        return hint(**{name: decode(value, fields[name]) for name, value in data.items()})
    if isinstance(hint, type) and issubclass(hint, (Enum, Path)):
        return hint(data)
    return data


def encode_call(method: str, args: tuple[Any, ...]) -> dict[str, Any]:
    names = list(contract.METHODS[method].parameters)[1:]  # without self
    return {name: encode(value) for name, value in zip(names, args, strict=False)}


def decode_call(method: str, data: dict[str, Any]) -> dict[str, Any]:
    hints = contract.hints(method)
    unknown = set(data) - set(contract.METHODS[method].parameters)
    if unknown:
        raise errors.AgentProtocolError(f"{method}: unknown arguments {sorted(unknown)}")
    return {name: decode(value, hints[name]) for name, value in data.items()}


def decode_result(method: str, data: Any) -> Any:
    return decode(data, contract.hints(method).get("return"))


# -- errors -------------------------------------------------------------------------------


def encode_error(err: Exception) -> dict[str, Any]:
    if isinstance(err, errors.HostCommandFailed):
        fields: dict[str, Any] = {"cmd": err.cmd, "returncode": err.returncode,
                                  "stderr": err.stderr}
        return {"type": type(err).__name__, "fields": fields}
    if isinstance(err, errors.HostError):
        return {"type": type(err).__name__, "fields": {"message": str(err)}}
    # A bug in the agent: the caller sees a host error naming it.
    return {"type": "HostError", "fields": {"message": f"{type(err).__name__}: {err}"}}


def _host_error_classes() -> dict[str, type[errors.HostError]]:
    found: dict[str, type[errors.HostError]] = {}
    pending: list[type[errors.HostError]] = [errors.HostError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def decode_error(data: dict[str, Any]) -> errors.HostError:
    cls = _host_error_classes().get(data.get("type", ""), errors.HostError)
    fields = data.get("fields", {})
    if issubclass(cls, errors.HostCommandFailed):
        return cls(fields.get("cmd", []), fields.get("returncode", -1), fields.get("stderr", ""))
    return cls(fields.get("message", ""))
