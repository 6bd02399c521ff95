"""The interpreter of a long-running gureum process (API, controllers, agent), tuned once
it has started: its garbage collector and how soon a waiting thread gets the GIL.

The garbage collector:

After start-up the heap holds ~200,000 objects that live as long as the process
(botocore's service models, SQLAlchemy's mappers, modules). Every full collection walked
them again: with 200 instances running, a full collection took ~145 ms, holding the GIL
(every API answer and launch waited), about every 15 s. Freezing them moves them out of
the collector's sight; a larger first-generation threshold makes the frequent young
collections fewer (the control loops allocate many short-lived rows).

The GIL: a thread back from a system call (runc, ip, a libnftables commit, a socket)
waits until the thread holding the GIL lets go, by default after up to 5 ms. A launch
makes dozens of such calls while the control loops compute (a security group's new
member rewrites every member's firewall), and could wait that long at each. With 200
instances running, at 1 ms: RunInstances -> sshd banner 0.207/0.236 s against 0.219/0.257 s
(two alternating pairs, medians of 10 launches), the host side 107 against 131 ms (one
pair). A noisy machine: a small gain, measured, not a large one.
"""

from __future__ import annotations

import gc
import sys

YOUNG_THRESHOLD = 10_000  # CPython's default is 700
SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005


def settle() -> None:
    """Call once, when start-up is done."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL)
