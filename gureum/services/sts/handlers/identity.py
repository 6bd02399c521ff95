"""GetCallerIdentity: Ansible's amazon.aws and Terraform's AWS provider ask it first."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.sts.identity import root_arn


@action("sts", "GetCallerIdentity")
def get_caller_identity(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"UserId": ctx.account_id, "Account": ctx.account_id, "Arn": root_arn(ctx.account_id)}
