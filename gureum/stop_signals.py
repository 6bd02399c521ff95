"""SIGTERM / SIGINT for the long-running commands (`gureum up`, `gureum agent`).

The wait wakes twice a second: the kernel may deliver a process's signal to any thread,
and then CPython only sets a flag that the main thread acts on when it next runs. An
untimed `Event.wait()` slept through a SIGTERM that way (seen once under load: the
process ran on until its stop timed out)."""

from __future__ import annotations

import signal
import threading


def on_stop_signal() -> threading.Event:
    """An event set by SIGTERM or SIGINT (handlers installed in the main thread)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait_until_set(stop: threading.Event) -> None:
    while not stop.wait(0.5):
        pass
