"""Who a request's access key belongs to. gureum has no IAM users yet: an access key is
its account's own (root) key, so the caller is the account's root, as AWS reports root
credentials (Arn `arn:aws:iam::<account>:root`, UserId the account id)."""

from __future__ import annotations

from gureum.api.dispatch import RequestContext
from gureum.store import models


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def account_of(ctx: RequestContext) -> models.Account:
    with ctx.cloud.store.read() as s:
        account = s.get(models.Account, ctx.account_id)
        assert account is not None  # the signature was checked against its key
        s.expunge(account)
        return account
