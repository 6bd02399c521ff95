"""GetUser: the caller (tools fall back to it for the account id), as AWS answers it for
root credentials. There are no IAM users yet, so a named user does not exist."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.iam import exceptions as exc
from gureum.services.sts.identity import account_of, root_arn


@action("iam", "GetUser")
def get_user(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("UserName"):
        raise exc.NoSuchEntity(f"The user with name {p['UserName'][:64]} cannot be found.")
    account = account_of(ctx)
    return {"User": {"UserId": ctx.account_id, "Arn": root_arn(ctx.account_id),
                     "CreateDate": account.created_at}}
