"""EC2 resource ids: prefix + 17 hex digits, as AWS issues them today."""

from __future__ import annotations

import hashlib
import re
import secrets

from gureum.services.ec2 import exceptions as exc

_ID = re.compile(r"^(?P<prefix>[a-z]+)-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def new(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def derived(prefix: str, *parts: str) -> str:
    """A stable id from its parts (default VPC, subnet, group of an account)."""
    return f"{prefix}-" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:17]


def is_valid(value: str, prefix: str) -> bool:
    m = _ID.match(value)
    return bool(m) and m.group("prefix") == prefix


def require(value: str, prefix: str, malformed: type[exc.ApiError]) -> str:
    """`value` when it is a well-formed `prefix-...` id; else `malformed`, in AWS's words."""
    if not is_valid(value, prefix):
        raise malformed(f"Invalid id: \"{value[:64]}\" (expecting \"{prefix}-...\")")
    return value


def check_instance_ids(ids: list[str]) -> None:
    bad = [i for i in ids if not is_valid(i, "i")]
    if bad:
        raise exc.InvalidInstanceIDMalformed(f"Invalid id: \"{bad[0]}\"")


def check_image_id(image_id: str) -> None:
    if not is_valid(image_id, "ami"):
        raise exc.InvalidAMIIDMalformed(f"Invalid id: \"{image_id}\" (expecting \"ami-...\")")
