"""Which control plane runs the controllers when several share one PostgreSQL database.

Every process serves the API; only the leader reconciles. The leader is whoever holds a
session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own, held for
as long as it leads: when the process dies its connection closes and PostgreSQL releases
the lock at once, and the next follower to try (every `retry_seconds`) takes over. The
leader checks that connection on the same interval; if it is lost, the lock may already be
someone else's, so it stops its controllers before anything else.

On SQLite there is one process per database: it leads from the start, and no thread runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from gureum.store import postgres
from gureum.store.db import Store

log = logging.getLogger("gureum.leadership")


class Leadership:
    def __init__(self, store: Store, on_elected: Callable[[], None],
                 on_deposed: Callable[[], None], retry_seconds: float = 2.0) -> None:
        self.store = store
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.retry_seconds = retry_seconds
        self.elected = threading.Event()
        self.terms = 0  # how many times this control plane was elected
        self._conn: Any = None  # the psycopg connection holding the lock while we lead
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)

    @property
    def leading(self) -> bool:
        return self.elected.is_set()

    def start(self) -> None:
        """Try once now (a lone control plane leads before its API opens), then keep
        trying, or keep checking, in the background."""
        if not self.store.is_postgres:
            self._lead()
            return
        self._attempt()
        self._thread.start()

    def stop(self) -> None:
        """Step down: controllers stop, then the lock goes with its connection."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.retry_seconds + 10)
        if self.leading:
            self._step_down()

    def _run(self) -> None:
        while not self._stopping.wait(self.retry_seconds):
            if self.leading:
                self._check()
            else:
                self._attempt()

    def _attempt(self) -> None:
        try:
            conn = postgres.dedicated_connection(self.store.engine)
        except Exception as err:  # noqa: BLE001  (database unreachable: follow, retry)
            log.warning("leadership: cannot reach the database: %s", err)
            return
        try:
            won = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                               postgres.LEADER_LOCK).fetchone()[0]
        except Exception as err:  # noqa: BLE001
            log.warning("leadership: lock attempt failed: %s", err)
            won = False
        if not won:
            conn.close()
            return
        self._conn = conn
        self._lead()

    def _lead(self) -> None:
        log.info("leadership: this control plane leads the controllers")
        self.terms += 1
        self.elected.set()
        try:
            self.on_elected()
        except Exception:
            log.exception("leadership: starting the controllers failed; stepping down")
            self._step_down()

    def _check(self) -> None:
        try:
            self._conn.execute("SELECT 1")
        except Exception as err:  # noqa: BLE001
            log.warning("leadership: lost the lock's connection (%s); stepping down", err)
            self._step_down()

    def _step_down(self) -> None:
        self.elected.clear()
        try:
            self.on_deposed()
        except Exception:
            log.exception("leadership: stopping the controllers failed")
        if self._conn is not None:
            with contextlib.suppress(Exception):  # releases the lock, if it still lives
                self._conn.close()
            self._conn = None
