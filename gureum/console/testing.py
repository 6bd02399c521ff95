"""A console client over plain HTTP (no browser): cookies, the CSRF token of the last
page, form posts. Used by the fast tests and bench/console.py."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from gureum.console.sessions import COOKIE

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    text: str


@dataclass
class ConsoleClient:
    port: int
    host: str = "127.0.0.1"
    session: str | None = None
    csrf_token: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str | list[str]] | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {**self.extra_headers, **(headers or {})}
        if self.session:
            sent["Cookie"] = f"{COOKIE}={self.session}"
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        cookies = resp.headers.get_all("Set-Cookie") or []
        for cookie in cookies:
            name, _, rest = cookie.partition("=")
            if name == COOKIE:
                self.session = rest.split(";")[0] or None
        found = TOKEN.search(text)
        if found:
            self.csrf_token = found.group(1)
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, cookies, text)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str | list[str]] | None = None,
             csrf: bool = True, headers: dict[str, str] | None = None) -> Answer:
        data = dict(form or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf_token)
        return self.request("POST", path, data, headers)

    def sign_in_link(self, url: str) -> Answer:
        parts = urlsplit(url)
        return self.get(f"{parts.path}?{parts.query}")

    def sign_in_key(self, access: str, secret: str) -> Answer:
        return self.post("/console/signin", {"access_key": access, "secret_key": secret},
                         csrf=False)
