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


def window(size: int | None, token: str | None, *, lo: int, hi: int,
           bad_token: Callable[[str], ApiError], bad_size: Callable[[int], ApiError],
           default: int | None = None) -> tuple[int, int | None]:
    """(offset, size) of the page asked for; size None means everything from offset."""
    start = decode(token, bad_token)
    size = default if size is None else size
    if size is not None and not lo <= size <= hi:
        raise bad_size(size)
    return start, size


def page(items: list[T], size: int | None, token: str | None, *, lo: int, hi: int,
         bad_token: Callable[[str], ApiError], bad_size: Callable[[int], ApiError],
         default: int | None = None) -> tuple[list[T], str | None]:
    """(this page, the next page's token or None) of a list in memory."""
    start, size = window(size, token, lo=lo, hi=hi, bad_token=bad_token, bad_size=bad_size,
                         default=default)
    if size is None:
        return items[start:], None
    end = start + size
    return items[start:end], encode(end) if end < len(items) else None


class Pager:
    """A service's paging, with its own errors: `pager(items, size, token)` pages a list;
    `pager.select(session, query, size, token)` pages in the database (LIMIT/OFFSET)."""

    def __init__(self, bad_token: Callable[[str], ApiError],
                 bad_size: Callable[[int, int, int], ApiError], **defaults: Any) -> None:
        self.bad_token, self.bad_size, self.defaults = bad_token, bad_size, defaults

    def _bounds(self, bounds: dict[str, Any]) -> dict[str, Any]:
        lo = bounds.get("lo", self.defaults.get("lo", 1))
        hi = bounds.get("hi", self.defaults.get("hi", 1000))
        return {"lo": lo, "hi": hi, "bad_token": self.bad_token,
                "bad_size": lambda n: self.bad_size(n, lo, hi),
                "default": bounds.get("default", self.defaults.get("default"))}

    def __call__(self, items: list[Any], size: int | None, token: str | None,
                 **bounds: Any) -> tuple[list[Any], str | None]:
        return page(items, size, token, **self._bounds(bounds))

    def select(self, session: Any, query: Any, size: int | None, token: str | None,
               **bounds: Any) -> tuple[list[Any], str | None]:
        start, size = window(size, token, **self._bounds(bounds))
        if size is None:
            return list(session.scalars(query.offset(start))), None
        rows = list(session.scalars(query.offset(start).limit(size + 1)))
        return rows[:size], encode(start + size) if len(rows) > size else None


def pager(bad_token: Callable[[str], ApiError], bad_size: Callable[[int, int, int], ApiError],
          **defaults: Any) -> Pager:
    return Pager(bad_token, bad_size, **defaults)
