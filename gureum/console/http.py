"""The console's request and response, independent of the HTTP server that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

PREFIX = "/console"


@dataclass
class Request:
    method: str
    target: str  # path and query as received
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    secure: bool = False  # arrived over HTTPS: cookies are Secure, the origin https://
    path: str = ""  # below /console: "/instances"
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        split = urlsplit(self.target)
        self.path = split.path[len(PREFIX):] or "/"
        self.query = parse_qs(split.query, keep_blank_values=True)
        if self.method == "POST" and self.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            self.form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def arg(self, name: str, default: str = "") -> str:
        """A query parameter (first value)."""
        return self.query.get(name, [default])[0]

    def field(self, name: str, default: str = "") -> str:
        """A form field (first value), stripped of surrounding blanks."""
        return self.form.get(name, [default])[0].strip()

    def fields(self, name: str) -> list[str]:
        return [v for v in self.form.get(name, []) if v.strip()]

    def cookie(self, name: str) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        return cls(status, b"", headers=[("Location", location)])

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        return cls(status, message.encode(), "text/plain; charset=utf-8")
