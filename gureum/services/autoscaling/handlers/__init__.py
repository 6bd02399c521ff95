"""Auto Scaling action handlers; importing this package registers them all."""

from gureum.services.autoscaling.handlers import (  # noqa: F401
    activities,
    groups,
    hooks,
    instances,
    policies,
    processes,
    refresh,
    schedules,
    tags,
)
