"""What the store does differently on PostgreSQL, where several control-plane processes
may share one database.

- Writers: SQLite has one writer at a time, and every read-then-write in the code (pick a
  free address, slot, index or name, then insert it) relies on that. On PostgreSQL each
  write transaction first takes one transaction-scoped advisory lock (`WRITE_LOCK`), so
  writers of every process queue as they do on SQLite, and a read inside a write
  transaction (READ COMMITTED: each statement sees everything committed before it) sees
  every earlier writer's rows. Readers never wait (MVCC). A writer stalled inside its
  transaction for `WRITER_STALL_SECONDS` has it ended by the server, so a frozen process
  never holds everyone's writes.
- Changes: a commit that changed rows sends `NOTIFY gureum_changes, '<origin> t1,t2'` in
  the same transaction (delivered only if it commits); `ChangeFeed` LISTENs, so a write
  served by one process wakes the controllers of the process that leads them.
- Migrations take `MIGRATE_LOCK`: two processes starting at once upgrade one at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger("gureum.store")

# Advisory locks are (classid, objid) pairs; the classid names gureum ("gu"), so another
# application's locks in the same database never collide with ours.
LOCK_CLASS = 0x6775
WRITE_LOCK = (LOCK_CLASS, 1)
LEADER_LOCK = (LOCK_CLASS, 2)
MIGRATE_LOCK = (LOCK_CLASS, 3)
CHANNEL = "gureum_changes"
# A writer that stops between two statements (SIGSTOP, a paused VM, a swap storm) would
# hold every process's writes while it sleeps: the server ends its transaction after this
# long idle inside it, which frees the lock. Writes are ms of work between statements.
WRITER_STALL_SECONDS = 10.0


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def take_write_lock(session: Session) -> None:
    """Wait for the database-wide writer lock; released when the transaction ends, or
    when the server ends a transaction left idle for `WRITER_STALL_SECONDS`."""
    stall = f"{int(WRITER_STALL_SECONDS * 1000)}ms"
    # set_config(..., true) is SET LOCAL: reads, which hold no lock, are never cut short.
    session.execute(select(
        func.set_config("idle_in_transaction_session_timeout", stall, True),
        func.pg_advisory_xact_lock(*WRITE_LOCK)))


def notify_changes(session: Session, origin: str, tables: set[str]) -> None:
    """Tell every listening process which tables this transaction changed (on commit)."""
    session.execute(select(func.pg_notify(CHANNEL, f"{origin} {','.join(sorted(tables))}")))


def dedicated_connection(engine: Engine) -> Any:  # noqa: ANN401  (a psycopg.Connection)
    """A psycopg connection of its own (outside the pool), in autocommit: for LISTEN and for
    session-level advisory locks that must live exactly as long as this connection."""
    dialect = engine.dialect
    args, kwargs = dialect.create_connect_args(engine.url)
    # Over TCP, a peer that vanished without a FIN is noticed in ~25 s, not the kernel's
    # ~15 minutes: a leader cut off from the database must learn it has lost the lock.
    for name, value in (("connect_timeout", 10), ("keepalives", 1), ("keepalives_idle", 10),
                        ("keepalives_interval", 5), ("keepalives_count", 3)):
        kwargs.setdefault(name, value)
    conn = dialect.loaded_dbapi.connect(*args, **kwargs)
    conn.autocommit = True
    return conn


class ChangeFeed:
    """Hears other processes' commits (LISTEN) and hands their table names to `deliver`.
    Reconnects after a lost connection; a notification missed meanwhile only delays a
    controller until its periodic resync."""

    def __init__(self, engine: Engine, origin: str,
                 deliver: Callable[[set[str]], None], poll_seconds: float = 1.0) -> None:
        self.engine = engine
        self.origin = origin
        self.deliver = deliver
        self.poll_seconds = poll_seconds
        self.listening = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = dedicated_connection(self.engine)
            except Exception as err:  # noqa: BLE001  (the database is down: retry)
                log.warning("change feed: cannot connect: %s", err)
                self._stopping.wait(self.poll_seconds)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                while not self._stopping.is_set():
                    for note in conn.notifies(timeout=self.poll_seconds):
                        self._handle(note.payload)
            except Exception as err:  # noqa: BLE001
                log.warning("change feed: connection lost: %s", err)
            finally:
                self.listening.clear()
                conn.close()

    def _handle(self, payload: str) -> None:
        origin, _, tables = payload.partition(" ")
        if origin == self.origin or not tables:
            return  # our own commits were delivered in-process already
        try:
            self.deliver(set(tables.split(",")))
        except Exception:
            log.exception("change feed: delivering %s failed", payload)
