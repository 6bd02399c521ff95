"""One paging scheme for every service: the token is the (opaque, encoded) offset of the
next item. Each service names its own errors for a bad token or page size, as AWS does."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar

from gureum.errors import ApiError

T = TypeVar("T")


def encode(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def decode(token: str | None, bad_token: Callable[[str], ApiError]) -> int:
    if not token:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_token(token[:64]) from None
    if offset < 0:
        raise bad_token(token[:64])
    return offset


def page(items: list[T], size: int | None, token: str | None, *, lo: int, hi: int,
         bad_token: Callable[[str], ApiError], bad_size: Callable[[int], ApiError],
         default: int | None = None) -> tuple[list[T], str | None]:
    """(this page, the next page's token or None). No size and no default: everything."""
    start = decode(token, bad_token)
    size = default if size is None else size
    if size is None:
        return items[start:], None
    if not lo <= size <= hi:
        raise bad_size(size)
    end = start + size
    return items[start:end], encode(end) if end < len(items) else None


def pager(bad_token: Callable[[str], ApiError], bad_size: Callable[[int, int, int], ApiError],
          **defaults: Any) -> Callable[..., tuple[list[Any], str | None]]:
    """A service's `page(items, size, token, lo=..., hi=...)` with its errors built in."""
    def service_page(items: list[Any], size: int | None, token: str | None,
                     **bounds: Any) -> tuple[list[Any], str | None]:
        lo, hi = bounds.get("lo", defaults.get("lo", 1)), bounds.get("hi", defaults.get("hi", 1000))
        return page(items, size, token, lo=lo, hi=hi, bad_token=bad_token,
                    bad_size=lambda n: bad_size(n, lo, hi),
                    default=bounds.get("default", defaults.get("default")))
    return service_page
