"""Template filters: how times, sizes and tags read on the page."""

from __future__ import annotations

import datetime as dt
from typing import Any


def when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value or "")


def tag(tags: list[dict[str, str]] | None, key: str) -> str:
    return next((t["Value"] for t in tags or [] if t["Key"] == key), "")


def pair(value: str) -> tuple[str, str]:
    """A select option whose value and text are the same."""
    return value, value


FILTERS = {"when": when, "tag": tag, "pair": pair}
