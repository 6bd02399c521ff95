"""EC2 `Filter.N.Name` / `Filter.N.Value.M` matching, with AWS's `*` and `?` wildcards.

A resource is described by a dict of filter name -> values; `tag:KEY` and `tag-key`
come from its tags. Values within one filter OR; filters AND.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from gureum.api.dispatch import CURRENT_ACTION
from gureum.services.ec2.exceptions import InvalidParameterValue


@cache
def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(value).replace("(?s:", "(?s:", 1))


def _matches(candidates: Iterable[str], wanted: list[str]) -> bool:
    for candidate in candidates:
        for value in wanted:
            if "*" in value or "?" in value:
                if _pattern(value).match(candidate):
                    return True
            elif candidate == value:
                return True
    return False


@cache
def _service_model(name: str) -> Any:
    """Loaded once: the model is large, and every documented() of a service reads it."""
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


@cache
def documented(model: str, action: str) -> frozenset[str]:
    """The filter names the botocore model documents for an action (its `Filters`
    member's list: `<li><p><code>name</code> - ...`)."""
    operation = _service_model(model).operation_model(action)
    members = operation.input_shape.members if operation.input_shape else {}
    member = members.get("Filters") or members.get("Filter")  # DescribeNatGateways: Filter
    if member is None:
        return frozenset()
    return frozenset(re.findall(r"<li>\s*<p>\s*<code>([^<&]+)</code>", member.documentation))


def validate(filters: list[dict[str, Any]] | None, allowed: set[str]) -> list[tuple[str, list[str]]]:
    """The filters, checked by name. A name EC2 documents for this action but gureum does
    not evaluate is accepted and matches nothing (as AWS's filters on attributes a
    resource lacks); an undocumented name is InvalidParameterValue, as on AWS."""
    current = CURRENT_ACTION.get()
    known = documented(*current) if current else frozenset()
    out = []
    for f in filters or []:
        name = f.get("Name")
        if not name:
            raise InvalidParameterValue("The filter name must be given")
        if name not in allowed and name not in known and name not in ("tag-key", "tag-value") \
                and not name.startswith("tag:"):
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
        out.append((name, [str(v) for v in f.get("Values", [])]))
    return out


def match(filters: list[tuple[str, list[str]]], fields: dict[str, Any],
          tags: dict[str, str]) -> bool:
    for name, values in filters:
        if name.startswith("tag:"):
            key = name[4:]
            candidates = [tags[key]] if key in tags else []
        elif name == "tag-key":
            candidates = list(tags)
        elif name == "tag-value":
            candidates = list(tags.values())
        else:
            raw = fields.get(name)
            if raw is None:
                candidates = []
            elif isinstance(raw, list | tuple | set):
                candidates = [_text(v) for v in raw]
            else:
                candidates = [_text(raw)]
        if not _matches(candidates, values):
            return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
