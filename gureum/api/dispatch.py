"""The action registry: one handler per (service, action), registered by decorator.

The coverage page (docs/COVERAGE.md) is generated from this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gureum.cloud import Cloud

# Service name in the SigV4 scope -> botocore model name.
SERVICES = {"ec2": "ec2", "elasticloadbalancing": "elbv2", "acm": "acm", "monitoring": "cloudwatch",
            "autoscaling": "autoscaling", "sts": "sts", "iam": "iam"}


@dataclass
class RequestContext:
    cloud: Cloud
    account_id: str
    request_id: str
    region: str
    # Set by the Auto Scaling controller when it launches for a group: placement spreads
    # the group's instances across hosts.
    spread_group: str | None = None


Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]
# (botocore model name, action) of the request a handler is serving, for code that
# follows the model's documentation of it (the filters EC2 documents per action).
CURRENT_ACTION: ContextVar[tuple[str, str] | None] = ContextVar("current_action", default=None)
HANDLERS: dict[tuple[str, str], Handler] = {}


def action(service: str, name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[(service, name)] = fn
        return fn
    return register


def load_handlers() -> None:
    """Import every service package so their handlers register."""
    import gureum.services.acm.handlers  # noqa: F401
    import gureum.services.autoscaling.handlers  # noqa: F401
    import gureum.services.cloudwatch.handlers  # noqa: F401
    import gureum.services.ec2.handlers  # noqa: F401
    import gureum.services.elbv2.handlers  # noqa: F401
    import gureum.services.iam.handlers  # noqa: F401
    import gureum.services.sts.handlers  # noqa: F401
