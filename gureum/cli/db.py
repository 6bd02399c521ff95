"""`gureum db`: the state's database: upgrade its schema, move it to another database."""

from __future__ import annotations

import sys

from gureum.config import Config
from gureum.store.copy import CopyError, copy_state
from gureum.store.db import Store


def migrate(cfg: Config) -> int:
    """Upgrade the configured database (GUREUM_DATABASE_URL, else the data directory's
    SQLite) to the newest schema; `gureum up` does the same at every start."""
    Store(cfg.store_url).migrate()
    print(f"{_shown(cfg.store_url)}: schema at head")
    return 0


def copy(cfg: Config, source: str | None, target: str) -> int:
    """Copy the whole state into an empty database (stop `gureum up` first): a one-host
    SQLite install moves to PostgreSQL, then starts with GUREUM_DATABASE_URL=<target>."""
    if source is None:
        if not cfg.db_path.exists():  # SQLite would make an empty one: say so instead
            print(f"gureum: no state at {cfg.db_path} (pass --data-dir or --from)",
                  file=sys.stderr)
            return 1
        source = f"sqlite:///{cfg.db_path}"
    try:
        copied = copy_state(source, target)
    except CopyError as err:
        print(f"gureum: {err}", file=sys.stderr)
        return 1
    for table, rows in copied.items():
        if rows:
            print(f"{table}: {rows}")
    print(f"copied {sum(copied.values())} rows from {_shown(source)} to {_shown(target)}; "
          f"start with GUREUM_DATABASE_URL={_shown(target)}")
    return 0


def _shown(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
