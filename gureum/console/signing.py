"""The console's signing key: 32 random bytes kept 0600 in the data directory
(`console.key`), made once by whichever process needs it first (the server, or
`gureum console-link` on the same host). Sign-in links and session cookies are signed
with it, so they outlive a restart; deleting it signs everyone out and voids every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "console.key"


def load_key(data_dir: Path) -> bytes:
    """The key, made first if there is none. Written whole under a temporary name and
    linked into place, so no process ever reads half a key, and of two processes making
    it at once one wins and both use its key."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


class Signer:
    """HMAC-SHA256 over a purpose and fields: a signature for one purpose (a link) is no
    signature for another (a session, a CSRF token)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, purpose: str, *fields: str) -> str:
        message = "\n".join((purpose, *fields)).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, signature: str, purpose: str, *fields: str) -> bool:
        return hmac.compare_digest(signature.encode(), self.sign(purpose, *fields).encode())
