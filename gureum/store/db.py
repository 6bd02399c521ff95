"""The store: engine, sessions, migrations.

SQLite allows one writer; `write()` serialises writers in-process behind a lock so that
no request ever sees "database is locked", and WAL lets readers run alongside.

After each commit, `on_commit` listeners hear which tables changed: the one place that
decides which controllers to wake (see `Cloud._wake_for`), so no handler has to remember.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        # Many request threads read at once (WAL): give them enough connections.
        self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False}
                                            if url.startswith("sqlite") else {},
                                            pool_size=32, max_overflow=32)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.RLock()
        self._commit_listeners: list[Callable[[set[str]], None]] = []
        event.listen(self._sessions, "after_flush", _note_flushed)
        event.listen(self._sessions, "do_orm_execute", _note_bulk)
        event.listen(self._sessions, "after_commit", self._committed)
        event.listen(self._sessions, "after_rollback", _forget_changes)

    def on_commit(self, listener: Callable[[set[str]], None]) -> None:
        """Call `listener(table names)` after every commit that changed rows."""
        self._commit_listeners.append(listener)

    def _committed(self, session: Session) -> None:
        changed = session.info.pop("changed", None)
        if changed:
            for listener in self._commit_listeners:
                listener(changed)

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write_lock, self._sessions() as session, session.begin():
            yield session


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
