"""What HAProxy's server states become in DescribeTargetHealth."""

from __future__ import annotations

import pytest

from gureum.services.elbv2.dataplane import health_of


@pytest.mark.parametrize(("state", "check", "previous", "expected"), [
    ("DOWN", "INI", "initial", ("initial", None)),  # added, not yet checked
    ("DOWN", "L7OK", "initial", ("initial", None)),  # passing, not yet up: still initial
    ("UP", "L7OK", "initial", ("healthy", None)),
    ("UP", "L7STS", "healthy", ("healthy", None)),  # failing, not yet past the threshold
    ("DOWN", "L7STS", "initial", ("unhealthy", "Target.ResponseCodeMismatch")),
    ("DOWN", "L4TOUT", "healthy", ("unhealthy", "Target.Timeout")),
    ("DOWN", "L4CON", "initial", ("unhealthy", "Target.FailedHealthChecks")),
    ("DOWN", "L7OK", "unhealthy", ("unhealthy", "Target.FailedHealthChecks")),  # recovering
])
def test_health_of(state: str, check: str, previous: str,
                   expected: tuple[str, str | None]) -> None:
    assert health_of(state, check, previous) == expected
