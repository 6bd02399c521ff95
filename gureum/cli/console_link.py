"""`gureum console-link`: a one-time sign-in link for the web console of a running
`gureum up` on this host. The link is signed with the console's key in the data directory
(root-only, like the state), which the running server checks it against: no call to the
server, whose memory holds nothing about the link."""

from __future__ import annotations

import sys

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from gureum.config import Config
from gureum.console.http import PREFIX
from gureum.console.sessions import LINK_SECONDS, mint_link
from gureum.console.signing import Signer, load_key
from gureum.store.db import Store
from gureum.store.models import Account


def account_id_of(cfg: Config, wanted: str) -> str | None:
    """The account named by id or by name, as the state knows it (read only)."""
    if cfg.store_url.startswith("sqlite") and not cfg.db_path.exists():
        return None  # no state here: do not make an empty database
    store = Store(cfg.store_url)
    try:
        with store.read() as s:
            return s.scalar(select(Account.account_id).where(
                or_(Account.account_id == wanted, Account.name == wanted)))
    except SQLAlchemyError:
        return None
    finally:
        store.engine.dispose()


def sign_in_url(cfg: Config, account_id: str, seconds: float = LINK_SECONDS) -> str:
    token = mint_link(Signer(load_key(cfg.data_dir)), account_id, seconds)
    return f"{cfg.endpoint}{PREFIX}/signin?token={token}"


def console_link(cfg: Config, account: str, hours: float) -> int:
    account_id = account_id_of(cfg, account)
    if account_id is None:
        print(f"no account {account!r} in the state of {cfg.data_dir} (is this the data "
              "directory of `gureum up`? --data-dir or GUREUM_DATA_DIR)", file=sys.stderr)
        return 1
    print(sign_in_url(cfg, account_id, hours * 3600))
    return 0
