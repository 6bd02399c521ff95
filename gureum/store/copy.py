"""Move a cloud's state from one database to another: how a one-host SQLite install
becomes a PostgreSQL one (`gureum db copy --to postgresql+psycopg://...`).

Both ends are migrated to head first (the source is upgraded as `gureum up` would), then
every table is copied in foreign-key order through the models' own column types (UTC
timestamps, JSON, booleans arrive as the target spells them), in one transaction on the
target: it ends with everything or nothing. The target must be empty. Integer keys the
database numbers itself (metric series and points, alarm history) keep their values, and
PostgreSQL's sequences are moved past them.
"""

from __future__ import annotations

from sqlalchemy import Table, func, insert, select, text

from gureum.errors import GureumError
from gureum.store.db import Store
from gureum.store.models import Base

BATCH = 5000


class CopyError(GureumError):
    """The copy was refused (the target holds state already)."""


def copy_state(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row from `source_url` to the empty database `target_url`; returns the
    number of rows copied per table (checked against the source's counts)."""
    source, target = Store(source_url), Store(target_url)
    source.migrate()
    target.migrate()
    tables = Base.metadata.sorted_tables
    copied: dict[str, int] = {}
    with source.engine.connect() as src, target.write() as session:
        dst = session.connection()
        occupied = [t.name for t in tables if dst.scalar(select(func.count()).select_from(t))]
        if occupied:
            raise CopyError(f"the target database already holds state ({', '.join(occupied)}); "
                            "copy only into an empty one")
        for table in tables:
            copied[table.name] = _copy_table(src, dst, table)
            if copied[table.name] != src.scalar(select(func.count()).select_from(table)):
                raise CopyError(f"{table.name}: copied {copied[table.name]} rows, the source "
                                "has a different number")
        if target.is_postgres:
            for table in tables:
                _advance_sequences(dst, table)
    return copied


def _copy_table(src, dst, table: Table) -> int:  # noqa: ANN001  (Connections)
    # In the source's storage order (SQLite: insertion order), kept by the target.
    result = src.execute(select(table))
    count = 0
    while rows := result.fetchmany(BATCH):
        dst.execute(insert(table), [row._asdict() for row in rows])
        count += len(rows)
    return count


def _advance_sequences(dst, table: Table) -> None:  # noqa: ANN001
    """A serial column's next value follows the largest copied one (else the first insert
    after the move collides with a copied row)."""
    column = table.autoincrement_column
    if column is None:
        return
    quote = dst.dialect.identifier_preparer.quote
    name, key = quote(table.name), quote(column.name)
    dst.execute(text(f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                     f"COALESCE((SELECT MAX({key}) FROM {name}), 0) + 1, false)"),
                {"table": name, "column": column.name})
