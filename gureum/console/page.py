"""What a view works with: the request, the signed-in session, API calls as its account,
rendering with the page's common context."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gureum.console import csrf
from gureum.console.http import PREFIX, Request, Response
from gureum.errors import ApiError

if TYPE_CHECKING:
    from gureum.console.app import Console
    from gureum.console.sessions import Session

FORM = "_form"  # the error slot of a whole form, not one field


class Page:
    def __init__(self, console: Console, request: Request, session: Session | None) -> None:
        self.console = console
        self.request = request
        self._session = session

    @property
    def session(self) -> Session:
        assert self._session is not None, "a public view has no session"
        return self._session

    @property
    def account_id(self) -> str:
        return self.session.account_id

    def call(self, action: str, params: dict[str, Any] | None = None,
             service: str = "ec2") -> dict[str, Any]:
        """An API action as this session's account (ApiError when refused)."""
        return self.console.actions(self.account_id, action, params, service)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        session = self._session
        base = {"request": self.request, "session": session, "csrf_field": csrf.FIELD,
                "csrf_token": session.csrf_token if session else "",
                "flashes": session.take_flashes() if session else [],
                "errors": {}}
        return Response(status, self.console.views.render(template, **{**base, **context}))

    def fragment(self, template: str, **context: Any) -> Response:
        """A piece of a page, for the live refresh (no flashes taken)."""
        return Response(200, self.console.views.render(template, **context))

    def redirect(self, path: str) -> Response:
        return Response.redirect(PREFIX + path)

    def unconfirmed(self, kind: str, name: str, action: str, back: str,
                    **more: Any) -> Response | None:
        """The page that asks before a destructive change, until its form says yes; None
        once it has. `action` and `back` are paths under the console."""
        if self.request.field("confirm") == "yes":
            return None
        return self.render("confirm_delete.html", kind=kind, name=name, action=PREFIX + action,
                           back=PREFIX + back, **more)

    def change(self, action: str, params: dict[str, Any], done: str,
               message: str | Callable[[dict[str, Any]], str], failed: str | None = None,
               service: str = "ec2") -> Response:
        """A change by a button (no form to show errors in): on success, `message` (or
        what it makes of the answer) on `done`; refused, the error on `failed` (`done`)."""
        try:
            out = self.call(action, params, service)
        except ApiError as err:
            self.session.flash(f"{err.code}: {err.message}", "error")
            return self.redirect(failed or done)
        return self.done(done, message(out) if callable(message) else message)

    def done(self, path: str, message: str) -> Response:
        """After a successful change: say so on the next page (Post/Redirect/Get)."""
        self.session.flash(message)
        return self.redirect(path)


def error_on(err: ApiError, fields: dict[str, str]) -> dict[str, str]:
    """Place an API error next to the field it concerns: `fields` maps an error code
    (or prefix), or a word of its message after `~`, to a field name; else the form's."""
    text = f"{err.code}: {err.message}"
    for key, name in fields.items():
        if key.startswith("~"):
            if key[1:].lower() in err.message.lower():
                return {name: text}
        elif err.code == key or err.code.startswith(key + "."):
            return {name: text}
    return {FORM: text}


def q(value: str) -> str:
    return quote(value, safe="")
