"""ACM action handlers; importing this package registers them all."""

from gureum.services.acm.handlers import certificates, requests  # noqa: F401
