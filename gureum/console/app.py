"""The console's front: routes a request to its view after the sign-in and CSRF gates,
and adds the security headers every answer carries."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from gureum.console import csrf, routing
from gureum.console.actions import Actions
from gureum.console.http import PREFIX, Request, Response
from gureum.console.page import Page, q
from gureum.console.sessions import COOKIE, Sessions, cookie_header
from gureum.console.views import Views
from gureum.errors import ApiError

if TYPE_CHECKING:
    from gureum.api.server import Api

log = logging.getLogger("gureum.console")

# Scripts and styles only from the console itself (no inline script, no CDN); no framing.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
     "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    # A Referer only to the console itself (no-referrer would make browsers send
    # "Origin: null" on form posts, which the CSRF check must refuse).
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
]


class Console:
    def __init__(self, api: Api) -> None:
        routing.load_pages()
        self.cloud = api.cloud
        self.actions = Actions(api)
        self.sessions = Sessions(self.cloud.config.data_dir)
        self.views = Views()

    def sign_in_url(self, account_id: str) -> str:
        """A one-time link that signs its first visitor in as `account_id` (24 h)."""
        return (f"{self.cloud.config.endpoint}{PREFIX}/signin?token="
                f"{self.sessions.link_token(account_id)}")

    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = self._route(request)
        except Exception:
            log.exception("console %s %s failed", request.method, request.path)
            response = Response.text(500, "The console failed on this request; see gureum.log.")
        response.headers.extend(SECURITY_HEADERS)
        if "Cache-Control" not in dict(response.headers):
            response.headers.append(("Cache-Control", "no-store"))
        # Server time of the page, for the browser's devtools and bench/console.py.
        response.headers.append(
            ("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.1f}"))
        return response

    def _route(self, request: Request) -> Response:
        if request.method == "GET" and request.path.startswith("/static/"):
            return self._static(request.path[len("/static/"):])
        found = routing.match(request.method, request.path)
        if found is False:
            return Response.text(405, "Method not allowed")
        if found is None:
            return Response.text(404, "No such console page")
        route, args = found
        if request.method == "POST" and not csrf.origin_ok(request):
            return Response.text(403, "Refused: this form was not sent from the console's "
                                      "own pages (cross-site request)")
        session = self.sessions.get(request.cookie(COOKIE))
        if session is not None and not self.cloud.account_exists(session.account_id):
            self.sessions.end(session)  # `gureum account delete` took its account
            session = None
        if not route.public:
            if session is None:
                if request.method == "POST":
                    return Response.text(403, "Refused: not signed in (the session ended?)")
                return Response.redirect(f"{PREFIX}/signin?next={q(request.target)}")
            if request.method == "POST" and not csrf.token_ok(request, session):
                return Response.text(403, "Refused: missing or wrong CSRF token")
        page = Page(self, request, session)
        try:
            response = route.view(page, **args)
        except ApiError as err:  # a read the page needed was refused (e.g. no such id)
            response = page.render("error.html", status=err.status, error=err)
        if session is not None and session.renewed and not any(
                name == "Set-Cookie" for name, _ in response.headers):
            # The idle limit slides: the cookie re-signed with this request's time.
            response.headers.append(("Set-Cookie", cookie_header(session.cookie,
                                                                 secure=request.secure)))
        return response

    def _static(self, name: str) -> Response:
        found = self.views.static.get(name)
        if found is None:
            return Response.text(404, "No such file")
        body, kind, _ = found
        return Response(200, body, kind,
                        [("Cache-Control", "public, max-age=31536000, immutable")])
