"""The garbage collector of a long-running gureum process, tuned once it has started.

After start-up the heap holds ~200,000 objects that live as long as the process
(botocore's service models, SQLAlchemy's mappers, modules). Every full collection walked
them again: with 200 instances running, a full collection took ~145 ms, holding the GIL
(every API answer and launch waited), about every 15 s. Freezing them moves them out of
the collector's sight; a larger first-generation threshold makes the frequent young
collections fewer (the control loops allocate many short-lived rows).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


def settle() -> None:
    """Call once, when start-up is done."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
