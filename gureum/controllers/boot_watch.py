"""Launched instances between their launch and SSH-ready, watched by one thread.

An instance boots for a few hundred milliseconds (seconds under load). A reconcile worker
that waited for it was a worker not launching the next one: a batch of 20 launched in
waves of the pool's size. Now the worker hands the boot to this watcher and is free; the
watcher asks each booting instance's agent (`ssh_ready`) in turn, a pass every
`interval` (longer with many booting), and calls back when it answers, fails or times
out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("gureum.controller")


@dataclass
class Boot:
    ready: Callable[[], bool]
    deadline: float
    on_ready: Callable[[], None]
    on_failure: Callable[[Exception], None]


class BootWatch:
    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self._boots: dict[str, Boot] = {}
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="boot-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._work.set()
        self._thread.join(timeout=10)

    def watch(self, instance_id: str, ready: Callable[[], bool], timeout: float,
              on_ready: Callable[[], None], on_failure: Callable[[Exception], None]) -> None:
        with self._lock:
            self._boots[instance_id] = Boot(ready, time.monotonic() + timeout, on_ready,
                                            on_failure)
        self._work.set()

    def watching(self) -> set[str]:
        with self._lock:
            return set(self._boots)

    def cancel(self, instance_id: str) -> bool:
        """Stop watching (the instance is no longer wanted running); no callback runs."""
        with self._lock:
            return self._boots.pop(instance_id, None) is not None

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                boots = list(self._boots.items())
            if not boots:
                self._work.wait()
                self._work.clear()
                continue
            started = time.monotonic()
            for instance_id, boot in boots:
                self._check(instance_id, boot)
            # A pass asks every booting instance (~0.3-0.5 ms each): with a batch of 100
            # booting, passes back to back would take a core from the boots themselves.
            # Resting three times as long as the pass keeps the watcher near a quarter of
            # one, and a single boot is still seen within ~10 ms.
            self._stopping.wait(max(self.interval, 3 * (time.monotonic() - started)))

    def _check(self, instance_id: str, boot: Boot) -> None:
        try:
            if boot.ready():
                outcome: Exception | None = None
            elif time.monotonic() > boot.deadline:
                outcome = TimeoutError(f"sshd of {instance_id} did not answer in time")
            else:
                return
        except Exception as err:  # the agent's failure is the launch's failure
            outcome = err
        with self._lock:
            if self._boots.get(instance_id) is not boot:
                return  # cancelled (or watched anew) meanwhile
            del self._boots[instance_id]
        try:
            if outcome is None:
                boot.on_ready()
            else:
                boot.on_failure(outcome)
        except Exception:
            log.exception("%s: finishing its boot failed", instance_id)
