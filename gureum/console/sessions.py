"""Console sessions (per account, in memory) and one-time sign-in links.

A restart of `gureum up` ends every session; `gureum up` prints a fresh link then.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

COOKIE = "gureum_console"
IDLE_SECONDS = 12 * 3600  # a session unused this long ends
LINK_SECONDS = 24 * 3600  # a sign-in link unused this long stops working


@dataclass
class Session:
    id: str
    account_id: str
    csrf_token: str
    expires: float
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    def flash(self, message: str, kind: str = "ok") -> None:
        """A message shown once, on the next page this session renders."""
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf_token.encode())


class Sessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._links: dict[str, tuple[str, float]] = {}  # token -> (account, expiry)

    def link_token(self, account_id: str) -> str:
        """A token that signs its first user in as `account_id`, once."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._links[token] = (account_id, time.monotonic() + LINK_SECONDS)
        return token

    def redeem(self, token: str) -> str | None:
        """The account a link token signs in as; the token is used up."""
        with self._lock:
            entry = self._links.pop(token, None)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def start(self, account_id: str) -> Session:
        session = Session(secrets.token_urlsafe(32), account_id,
                          secrets.token_urlsafe(32), time.monotonic() + IDLE_SECONDS)
        with self._lock:
            self._prune()
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires < now:
                self._sessions.pop(session_id, None)
                return None
            session.expires = now + IDLE_SECONDS
            return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _prune(self) -> None:
        now = time.monotonic()
        for sid in [k for k, s in self._sessions.items() if s.expires < now]:
            del self._sessions[sid]
        for tok in [k for k, (_, exp) in self._links.items() if exp < now]:
            del self._links[tok]


def cookie_header(session_id: str, max_age: int = IDLE_SECONDS, secure: bool = False) -> str:
    # HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it;
    # Secure whenever the console is served over HTTPS (always, beyond loopback), so the
    # browser never sends it in clear text. Plain HTTP is loopback only.
    return (f"{COOKIE}={session_id}; Path=/console; HttpOnly; SameSite=Strict; "
            f"Max-Age={max_age}" + ("; Secure" if secure else ""))
