"""The store: engine, sessions, migrations.

SQLite allows one writer; `write()` serialises writers in-process behind a lock so that
no request ever sees "database is locked", and WAL lets readers run alongside. On
PostgreSQL (`GUREUM_DATABASE_URL`) writers of every process sharing the database queue on
one advisory lock as well, and commits are announced to the other processes (see
`store/postgres.py`).

After each commit, `on_commit` listeners hear which tables changed: the one place that
decides which controllers to wake (see `Cloud._wake_for`), so no handler has to remember.
They may also hear which instances the commit touched (their own rows, rows that point
at them by `instance_id` or `resource_id`, before and after): a controller whose view
is built per instance then rebuilds only those. Unknown (None) after a bulk statement or
another process's commit, which name tables only.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

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
        self._instance_listeners: list[Callable[[set[str], frozenset[str] | None], None]] = []
        event.listen(self._sessions, "after_flush", _note_flushed)
        event.listen(self._sessions, "do_orm_execute", _note_bulk)
        if self.is_postgres:
            event.listen(self._sessions, "before_commit", self._announce)
        event.listen(self._sessions, "after_commit", self._committed)
        event.listen(self._sessions, "after_rollback", _forget_changes)

    def on_commit(self, listener: Callable[[set[str]], None]) -> None:
        """Call `listener(table names)` after every commit that changed rows."""
        self._commit_listeners.append(listener)

    def on_commit_instances(
            self, listener: Callable[[set[str], frozenset[str] | None], None]) -> None:
        """Call `listener(table names, instance ids touched or None: unknown)` after every
        commit that changed rows."""
        self._instance_listeners.append(listener)

    def change_feed(self) -> postgres.ChangeFeed | None:
        """On PostgreSQL, a (not yet started) feed delivering other processes' commits to
        the `on_commit` listeners; None on SQLite, where one process owns the file."""
        if not self.is_postgres:
            return None
        return postgres.ChangeFeed(self.engine, self.origin, self._deliver)

    def _deliver(self, changed: set[str], instances: frozenset[str] | None = None) -> None:
        for listener in self._commit_listeners:
            listener(changed)
        for instance_listener in self._instance_listeners:
            instance_listener(changed, instances)

    def _announce(self, session: Session) -> None:
        session.flush()  # the commit's own flush comes after this hook: note its tables now
        changed = session.info.get("changed")
        if changed:
            postgres.notify_changes(session, self.origin, changed)

    def _committed(self, session: Session) -> None:
        changed = session.info.pop("changed", None)
        touched = session.info.pop("instances", set())
        unknown = session.info.pop("instances_unknown", False)
        if changed:
            self._deliver(changed, None if unknown else frozenset(touched))

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


# Columns by which a row belongs to an instance: what `_instances_of` reads.
INSTANCE_KEYS = ("instance_id", "resource_id")


def _note_flushed(session: Session, _context: object) -> None:
    changed = session.info.setdefault("changed", set())
    touched = session.info.setdefault("instances", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table:
            changed.add(table)
            touched.update(_instances_of(obj))


def _instances_of(obj: object) -> set[str]:
    """The instances a flushed row belongs to, before and after the change (an interface
    moved from one instance to another touches both)."""
    state = sa_inspect(obj)
    ids = set()
    for key in INSTANCE_KEYS:
        if key in state.mapper.columns:
            history = state.attrs[key].history
            ids.update(v for v in (*history.added, *history.unchanged, *history.deleted)
                       if isinstance(v, str) and v.startswith("i-"))
    return ids


def bulk_delete(session: Session, statement: Executable, ids: Iterable[str]) -> None:
    """A bulk DELETE of the rows of these resources (any kind of id): the commit then says
    which instances it touched (a bare bulk statement makes them unknown)."""
    session.info.setdefault("instances", set()).update(i for i in ids if i.startswith("i-"))
    session.execute(statement, execution_options={"instances_noted": True})


def _note_bulk(state) -> None:  # noqa: ANN001  (ORMExecuteState)
    """Bulk UPDATE/DELETE statements bypass the flush: note their table too (which rows
    they touched is unknown unless the caller noted them, `bulk_delete`)."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        state.session.info.setdefault("changed", set()).add(
            state.bind_mapper.local_table.name)
        if not state.execution_options.get("instances_noted"):
            state.session.info["instances_unknown"] = True


def _forget_changes(session: Session) -> None:
    for key in ("changed", "instances", "instances_unknown"):
        session.info.pop(key, None)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
