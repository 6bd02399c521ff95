"""Loaded by the bench server through PYTHONPATH: times every control-loop pass (thread
CPU and wall) and, with HOSTPROBE=1, the host steps of each launch; rows go to
$PASSPROBE_OUT as `<monotonic start> <name> <cpu ms> <wall ms> <woken>` (commits as
`COMMIT <tables>`). Read by tools/passes.py. Measurement only: not for a real cloud."""

from __future__ import annotations

import functools
import os
import threading
import time

OUT = os.environ.get("PASSPROBE_OUT")
_rows: list[str] = []


def _loop_passes() -> None:
    from gureum.controllers import loop
    from gureum.errors import AgentUnavailable

    def run(self) -> None:  # noqa: ANN001 - ResyncLoop._run, timed
        while not self.stopping.is_set():
            self.woken = self.wakeup.wait(timeout=self.resync_seconds)
            self.wakeup.clear()
            if self.stopping.is_set():
                break
            t0, c0 = time.monotonic(), time.thread_time()
            try:
                self.sync()
            except AgentUnavailable:
                pass
            except Exception:
                loop.log.exception("%s sync failed", self.name)
            _rows.append(f"{t0:.4f} {self.name} {(time.thread_time() - c0) * 1000:.2f} "
                         f"{(time.monotonic() - t0) * 1000:.2f} {int(self.woken)}\n")
            if self.min_interval:
                self.stopping.wait(self.min_interval)
    loop.ResyncLoop._run = run


def _commits() -> None:
    from gureum.store import db
    deliver = db.Store._deliver

    def timed(self, changed, instances=None):  # noqa: ANN001, ANN202
        _rows.append(f"{time.monotonic():.4f} COMMIT {','.join(sorted(changed))} 0 0\n")
        return deliver(self, changed, instances)
    db.Store._deliver = timed


def _host_steps() -> None:
    from gureum.agent import agent, network
    from gureum.agent.drivers import container
    from gureum.agent.runtime import runc

    def wrap(owner: object, name: str, label: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t0 = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                _rows.append(f"{t0:.4f} HOST:{label} 0 {(time.monotonic() - t0) * 1000:.2f} 0\n")
        setattr(owner, name, timed)
    for owner, name, label in (
            (agent.HostAgent, "launch", "launch"), (agent.HostAgent, "_wire", "_wire"),
            (agent.HostAgent, "_ensure_public_ip", "_ensure_public_ip"),
            (network, "create_instance_netns", "create_instance_netns"),
            (container.ContainerDriver, "prepare", "prepare"),
            (runc.RuncDriver, "start", "runc.start")):
        wrap(owner, name, label)


def _dump() -> None:
    while True:
        time.sleep(1)
        rows = _rows[:]
        del _rows[:len(rows)]
        if rows:
            with open(OUT, "a") as f:  # type: ignore[arg-type]
                f.writelines(rows)


if OUT:
    _loop_passes()
    _commits()
    if os.environ.get("HOSTPROBE"):
        _host_steps()
    threading.Thread(target=_dump, daemon=True).start()
