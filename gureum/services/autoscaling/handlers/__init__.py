"""Auto Scaling action handlers; importing this package registers them all."""

from gureum.services.autoscaling.handlers import (  # noqa: F401
    activities,
    groups,
    instances,
    policies,
    processes,
    refresh,
    schedules,
    tags,
)
