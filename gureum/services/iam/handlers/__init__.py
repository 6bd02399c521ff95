"""IAM action handlers; importing this package registers them all."""

from gureum.services.iam.handlers import users  # noqa: F401
