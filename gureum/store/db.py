"""The store: engine, sessions, migrations.

SQLite allows one writer; `write()` serialises writers in-process behind a lock so that
no request ever sees "database is locked", and WAL lets readers run alongside. On
PostgreSQL (`GUREUM_DATABASE_URL`) writers of every process sharing the database queue on
one advisory lock as well, and commits are announced to the other processes (see
`store/postgres.py`).

After each commit, `on_commit` listeners hear which tables changed: the one place that
decides which controllers to wake (see `Cloud._wake_for`), so no handler has to remember.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gureum.store import postgres

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_postgres = postgres.is_postgres(url)
        # Names this process in its change notifications, so it skips its own.
        self.origin = secrets.token_hex(8)
        # Many request threads read at once (WAL): give them enough connections.
        self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False}
                                            if url.startswith("sqlite") else {},
                                            pool_size=32, max_overflow=32,
                                            pool_pre_ping=self.is_postgres)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.RLock()
        self._writing = threading.local()  # depth of write() in this thread
        self._commit_listeners: list[Callable[[set[str]], None]] = []
        event.listen(self._sessions, "after_flush", _note_flushed)
        event.listen(self._sessions, "do_orm_execute", _note_bulk)
        if self.is_postgres:
            event.listen(self._sessions, "before_commit", self._announce)
        event.listen(self._sessions, "after_commit", self._committed)
        event.listen(self._sessions, "after_rollback", _forget_changes)

    def on_commit(self, listener: Callable[[set[str]], None]) -> None:
        """Call `listener(table names)` after every commit that changed rows."""
        self._commit_listeners.append(listener)

    def change_feed(self) -> postgres.ChangeFeed | None:
        """On PostgreSQL, a (not yet started) feed delivering other processes' commits to
        the `on_commit` listeners; None on SQLite, where one process owns the file."""
        if not self.is_postgres:
            return None
        return postgres.ChangeFeed(self.engine, self.origin, self._deliver)

    def _deliver(self, changed: set[str]) -> None:
        for listener in self._commit_listeners:
            listener(changed)

    def _announce(self, session: Session) -> None:
        session.flush()  # the commit's own flush comes after this hook: note its tables now
        changed = session.info.get("changed")
        if changed:
            postgres.notify_changes(session, self.origin, changed)

    def _committed(self, session: Session) -> None:
        changed = session.info.pop("changed", None)
        if changed:
            self._deliver(changed)

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url)
        with self.engine.begin() as conn:
            if self.is_postgres:  # processes starting together upgrade one at a time
                conn.execute(select(func.pg_advisory_xact_lock(*postgres.MIGRATE_LOCK)))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write_lock, self._sessions() as session, session.begin():
            depth = getattr(self._writing, "depth", 0)
            if self.is_postgres and depth == 0:
                # A nested write() in this thread already runs under the outer one's lock.
                postgres.take_write_lock(session)
            self._writing.depth = depth + 1
            try:
                yield session
            finally:
                self._writing.depth = depth


def _note_flushed(session: Session, _context: object) -> None:
    changed = session.info.setdefault("changed", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table:
            changed.add(table)


def _note_bulk(state) -> None:  # noqa: ANN001  (ORMExecuteState)
    """Bulk UPDATE/DELETE statements bypass the flush: note their table too."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        state.session.info.setdefault("changed", set()).add(
            state.bind_mapper.local_table.name)


def _forget_changes(session: Session) -> None:
    session.info.pop("changed", None)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
