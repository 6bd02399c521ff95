"""Small host helpers without a cloud: steps side by side, listening sockets."""

from __future__ import annotations

import contextlib
import socket

import pytest

from gureum.agent import network, procnet
from gureum.agent.steps import side_by_side


def test_steps_side_by_side_keep_their_undos_and_undo_all_on_a_failure() -> None:
    done: list[str] = []

    def step(name: str, fail: bool = False):  # noqa: ANN202
        def run(undo: contextlib.ExitStack) -> None:
            undo.callback(done.append, f"undo {name}")
            if fail:
                raise RuntimeError(name)
        return run

    with contextlib.ExitStack() as undo:
        side_by_side(undo, step("disk"), step("net"))
        assert done == []  # kept: undone with the caller's stack
    assert sorted(done) == ["undo disk", "undo net"]
    done.clear()
    with pytest.raises(RuntimeError, match="net"), contextlib.ExitStack() as undo:
        side_by_side(undo, step("disk"), step("net", fail=True))
    assert sorted(done) == ["undo disk", "undo net"]  # the finished step too, once


def test_listening_sockets_come_from_sock_diag() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not procnet.listening(None, port)  # bound, not listening
        s.listen()
        assert procnet.listening(None, port)
        assert procnet.listening(None, port, {"127.0.0.1"})
        assert not procnet.listening(None, port, {"127.0.0.2"})
        assert network.port_in_use("127.0.0.1", port)  # a load balancer's listener check
        assert not network.port_in_use("127.0.0.2", port)
        assert s.getsockname()[1] in {p for _a, p, _i in procnet.listeners(None)}
    assert not procnet.listening(None, port)
    assert procnet.listeners("/nonexistent/netns") == []

