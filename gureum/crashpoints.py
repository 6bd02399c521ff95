"""Named crash points: GUREUM_CRASH_AT=<name> makes the process SIGKILL itself there.

Tests use them to prove that every multi-step operation converges after a crash.
"""

from __future__ import annotations

import os
import signal


def crashpoint(name: str) -> None:
    if os.environ.get("GUREUM_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
