"""ELBv2 action handlers; importing this package registers them all."""

from gureum.services.elbv2.handlers import (  # noqa: F401
    listener_certificates,
    listeners,
    load_balancers,
    rules,
    tags,
    target_groups,
    targets,
)
