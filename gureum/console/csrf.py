"""Cross-site request forgery: every POST must come from the console's own origin and,
once signed in, carry the session's token (a form field or the X-CSRF-Token header).

SameSite=Strict alone is not enough: cookies are not isolated by port, so a page served
from another port of the same host is "same-site" and its forms would carry the cookie.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gureum.console.http import Request
from gureum.console.sessions import Session

FIELD = "csrf_token"
HEADER = "x-csrf-token"


def own_origin(request: Request) -> str:
    scheme = "https" if request.secure else "http"
    return f"{scheme}://{request.headers.get('host', '')}"


def origin_ok(request: Request) -> bool:
    """Whether the browser says the request comes from this console's pages. A client
    that sends neither Origin nor Referer (curl, scripts) is judged by the token alone."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None and "referer" in request.headers:
        parts = urlsplit(request.headers["referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin is None or origin == own_origin(request)


def token_ok(request: Request, session: Session) -> bool:
    token = request.headers.get(HEADER) or request.form.get(FIELD, [""])[0]
    return session.csrf_ok(token)
