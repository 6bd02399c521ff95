"""The one loop of every controller: a thread that runs `sync()` when woken and at least
every `resync_seconds`: level-triggered, so a missed wakeup only delays convergence. An
unreachable agent postpones a pass; any other error is logged and the next pass retries."""

from __future__ import annotations

import logging
import threading

from gureum.errors import AgentUnavailable

log = logging.getLogger("gureum.controller")
BURST_SECONDS = 0.1  # min_interval of loops that read every instance and no launch waits on


class ResyncLoop:
    name = "controller"
    resync_seconds = 5.0
    # The shortest time between two passes. Commits woken during it coalesce into the next
    # pass: a batch of launches commits once per instance, and a loop whose pass reads
    # every instance would otherwise make that burst quadratic. 0 for loops a launch
    # waits on.
    min_interval = 0.0

    def __init__(self, wakeup: threading.Event | None = None) -> None:
        self.wakeup = wakeup or threading.Event()
        self.woken = True
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()
        self.thread.join(timeout=10)

    def sync(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self.stopping.is_set():
            # Whether a commit (not the timer) started this pass: a loop may do less then.
            self.woken = self.wakeup.wait(timeout=self.resync_seconds)
            self.wakeup.clear()
            if self.stopping.is_set():
                break
            try:
                self.sync()
            except AgentUnavailable as err:
                log.info("%s postponed: %s", self.name, err)
            except Exception:
                log.exception("%s sync failed", self.name)
            if self.min_interval:
                self.stopping.wait(self.min_interval)
