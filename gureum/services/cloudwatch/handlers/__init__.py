"""CloudWatch action handlers; importing this package registers them all."""

from gureum.services.cloudwatch.handlers import alarms, metrics, tags  # noqa: F401
