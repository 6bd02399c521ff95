"""STS action handlers; importing this package registers them all."""

from gureum.services.sts.handlers import identity  # noqa: F401
