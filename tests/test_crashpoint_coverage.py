"""Every crash point in the code is exercised by the durability tests, and every agent
operation that changes the host has at least one."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from gureum.agent.agent import HostAgent

ROOT = Path(__file__).resolve().parent.parent


def crashpoints_in_code() -> set[str]:
    names = set()
    for path in (ROOT / "gureum").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "crashpoint"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                names.add(node.args[0].value)
    return names


def test_every_crash_point_is_exercised():
    tested = set(re.findall(r'"((?:launch|stop|terminate|reboot|controller|vpc|autoscaling|ebs)\.[a-z_]+)"',
                            (ROOT / "tests" / "test_durability.py").read_text()))
    untested = crashpoints_in_code() - tested
    # reboot.* is exercised through launch's own points (reboot = stop + launch).
    untested = {p for p in untested if not p.startswith("reboot.")}
    assert not untested, f"crash points without a durability test: {sorted(untested)}"


def test_every_host_operation_has_a_crash_point():
    for name in ("launch", "stop", "reboot", "destroy"):
        source = inspect.getsource(getattr(HostAgent, name))
        assert "crashpoint(" in source, f"HostAgent.{name} has no crash point"


def test_vpc_plumbing_has_crash_points():
    from gureum.agent import network

    assert "crashpoint(" in inspect.getsource(network.ensure_vpc)
