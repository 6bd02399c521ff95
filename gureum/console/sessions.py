"""Console sessions and sign-in links, both signed with the console's key (signing.py),
so they survive a restart of `gureum up`, and `gureum console-link` (another process on
the host, with the key) can mint a link the running server accepts.

A link token is "<account>.<expiry>.<nonce>.<mac>": it signs in once (its nonce is spent,
spent.py) until its expiry. A session is a signed cookie "<id>.<account>.<seen>.<mac>"
rather than a server-side record: a restart loses nothing, nothing is written per request,
and control planes sharing the data directory accept each other's sessions. What the
server keeps is what it must refuse: signed-out session ids, until they would have
expired anyway. The idle limit slides: a cookie older than RENEW_SECONDS is re-signed
with a fresh time on the next answer. The CSRF token is derived from the session id, so
forms rendered before a restart still post after it. Flash messages alone live in memory
(a restart drops an unread "Saved").
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gureum.console.signing import Signer, load_key
from gureum.console.spent import SpentIds

COOKIE = "gureum_console"
IDLE_SECONDS = 12 * 3600  # a session unused this long ends
RENEW_SECONDS = 300  # a session cookie older than this is re-signed (sliding idle limit)
LINK_SECONDS = 24 * 3600  # a sign-in link unused this long stops working
REVOKED_FILE = "console-revoked"  # signed-out session ids
USED_LINKS_FILE = "console-links-used"  # nonces of links that signed someone in


@dataclass
class Session:
    id: str
    account_id: str
    csrf_token: str
    cookie: str  # the cookie's value as it was, or re-signed (then `renewed`)
    renewed: bool = False
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    def flash(self, message: str, kind: str = "ok") -> None:
        """A message shown once, on the next page this session renders."""
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken = list(self.flashes)
        self.flashes.clear()
        return taken

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf_token.encode())


class Sessions:
    def __init__(self, data_dir: Path) -> None:
        self.signer = Signer(load_key(data_dir))
        self.revoked = SpentIds(data_dir / REVOKED_FILE)
        self.used_links = SpentIds(data_dir / USED_LINKS_FILE)
        self._lock = threading.Lock()
        self._flashes: dict[str, tuple[float, list[tuple[str, str]]]] = {}  # id -> (seen, list)

    def link_token(self, account_id: str, seconds: float = LINK_SECONDS) -> str:
        """A token that signs its first user in as `account_id`, once, for `seconds`."""
        return mint_link(self.signer, account_id, seconds)

    def redeem(self, token: str) -> str | None:
        """The account a link token signs in as; the token is used up."""
        parts = token.split(".")
        if len(parts) != 4:
            return None
        account_id, expiry, nonce, mac = parts
        if not self.signer.verify(mac, "link", account_id, expiry, nonce):
            return None
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        return account_id if self.used_links.spend(nonce, int(expiry)) else None

    def start(self, account_id: str) -> Session:
        return self._session(secrets.token_urlsafe(18), account_id, time.time())

    def get(self, cookie: str | None) -> Session | None:
        parts = (cookie or "").split(".")
        if len(parts) != 4:
            return None
        session_id, account_id, seen, mac = parts
        if not self.signer.verify(mac, "session", session_id, account_id, seen):
            return None
        now = time.time()
        if not seen.isdigit() or int(seen) + IDLE_SECONDS < now or session_id in self.revoked:
            return None
        if now - int(seen) > RENEW_SECONDS:
            return self._session(session_id, account_id, now, renewed=True)
        return self._session(session_id, account_id, int(seen), cookie=cookie)

    def end(self, session: Session) -> None:
        """Signed out: its id is refused for as long as any cookie of it could live."""
        self.revoked.spend(session.id, time.time() + IDLE_SECONDS + RENEW_SECONDS)
        with self._lock:
            self._flashes.pop(session.id, None)

    def _session(self, session_id: str, account_id: str, seen: float, renewed: bool = False,
                 cookie: str | None = None) -> Session:
        stamp = f"{seen:.0f}"
        if cookie is None:
            cookie = ".".join((session_id, account_id, stamp,
                               self.signer.sign("session", session_id, account_id, stamp)))
        return Session(session_id, account_id, self.signer.sign("csrf", session_id), cookie,
                       renewed, self._flash_list(session_id))

    def _flash_list(self, session_id: str) -> list[tuple[str, str]]:
        """The session's pending flashes (one list per id, shared by its requests)."""
        now = time.time()
        with self._lock:
            if len(self._flashes) > 1000:  # ids no longer used: let their messages go
                for sid in [k for k, (t, _) in self._flashes.items() if t + IDLE_SECONDS < now]:
                    del self._flashes[sid]
            _, flashes = self._flashes.get(session_id, (now, []))
            self._flashes[session_id] = (now, flashes)
            return flashes


def mint_link(signer: Signer, account_id: str, seconds: float = LINK_SECONDS) -> str:
    """A sign-in link token: any process holding the key may mint one (console-link)."""
    expiry, nonce = f"{time.time() + seconds:.0f}", secrets.token_urlsafe(12)
    return ".".join((account_id, expiry, nonce,
                     signer.sign("link", account_id, expiry, nonce)))


def cookie_header(value: str, max_age: int = IDLE_SECONDS, secure: bool = False) -> str:
    # HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it;
    # Secure whenever the console is served over HTTPS (always, beyond loopback), so the
    # browser never sends it in clear text. Plain HTTP is loopback only.
    return (f"{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; "
            f"Max-Age={max_age}" + ("; Secure" if secure else ""))
