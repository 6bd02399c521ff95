"""How agent calls travel between processes: JSON, with bytes as base64 and the agent's
dataclasses rebuilt by name. One place, so both ends agree."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

from gureum.agent.agent import InstanceSpec
from gureum.agent.firewall import Firewall, FirewallRule
from gureum.agent.network import NetworkPlan, VpcNetwork
from gureum.agent.runtime.base import Limits, RuntimeState

TYPES = {cls.__name__: cls for cls in (InstanceSpec, Firewall, FirewallRule, Limits, NetworkPlan,
                                       VpcNetwork)}


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__,
                **{f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, RuntimeState):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__bytes__" in value:
        return base64.b64decode(value["__bytes__"])
    kind = value.get("__type__")
    if kind is None:
        return {k: decode(v) for k, v in value.items()}
    cls = TYPES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    args = {}
    for name, raw in value.items():
        if name == "__type__":
            continue
        item = decode(raw)
        hint = str(fields[name].type)
        if isinstance(item, list) and "tuple" in hint:
            item = tuple(item)
        if hint == "Path":
            item = Path(item)
        args[name] = item
    return cls(**args)
