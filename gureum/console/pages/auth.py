"""Signing in (one-time link or access key + secret) and out."""

from __future__ import annotations

import hmac
import time

from gureum.console.http import PREFIX, Response
from gureum.console.page import FORM, Page
from gureum.console.routing import route
from gureum.console.sessions import COOKIE, cookie_header

FAILED_SIGN_IN_DELAY = 0.5  # seconds: guessing secrets through the form stays slow


def _next(target: str) -> str:
    """Where to go after signing in: only a console path (never another site)."""
    return target if target.startswith(PREFIX + "/") and not target.startswith("//") \
        else PREFIX + "/instances"


def _signed_in(page: Page, account_id: str, target: str) -> Response:
    old = page.console.sessions.get(page.request.cookie(COOKIE))
    if old is not None:
        page.console.sessions.end(old)  # a fresh id at every sign-in (no fixation)
    session = page.console.sessions.start(account_id)
    response = Response.redirect(_next(target))
    response.headers.append(("Set-Cookie", cookie_header(session.cookie,
                                                         secure=page.request.secure)))
    return response


@route("GET", "/", public=True)
def home(page: Page) -> Response:
    return page.redirect("/instances")


@route("GET", "/signin", public=True)
def sign_in_form(page: Page) -> Response:
    token = page.request.arg("token")
    if token:
        account_id = page.console.sessions.redeem(token)
        if account_id is not None:
            return _signed_in(page, account_id, page.request.arg("next"))
        return page.render("signin.html", status=403, next=page.request.arg("next"),
                           access_key="", errors={FORM: "This sign-in link was already used "
                                                  "or has expired. Sign in with an access key, "
                                                  "or make a new link on the host: "
                                                  "`gureum console-link`."})
    return page.render("signin.html", next=page.request.arg("next"), access_key="")


@route("POST", "/signin", public=True)
def sign_in(page: Page) -> Response:
    access = page.request.field("access_key")
    secret = page.request.field("secret_key")
    known = page.console.cloud.secret_for(access) if access else None
    if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
        time.sleep(FAILED_SIGN_IN_DELAY)
        return page.render("signin.html", status=401, next=page.request.field("next"),
                           access_key=access,
                           errors={FORM: "The access key or secret is not right."})
    return _signed_in(page, page.console.cloud.account_for(access), page.request.field("next"))


@route("POST", "/signout")
def sign_out(page: Page) -> Response:
    page.console.sessions.end(page.session)
    response = Response.redirect(PREFIX + "/signin")
    response.headers.append(("Set-Cookie", cookie_header("", max_age=0,
                                                         secure=page.request.secure)))
    return response
