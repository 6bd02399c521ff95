"""HAProxy config words: a fixed response's body with a line break must not break the
config (it did: `haproxy -c` refused it and the load balancer was never applied)."""

from __future__ import annotations

from gureum.agent.lb.haproxy import _quote


def test_control_characters_are_escaped_not_written_raw() -> None:
    word = _quote('no app here\n"quoted"\\ \ttab\r')
    assert "\n" not in word and "\r" not in word and "\t" not in word
    assert word == '"no app here\\n\\"quoted\\"\\\\ \\ttab\\r"'
