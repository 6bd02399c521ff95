"""Independent steps of one host operation, run at once.

Each step gets an undo stack of its own. When every step succeeds, their undos join the
caller's stack (undone with it if a later step fails); when one fails, what the others
finished is undone at once and the first failure is raised. Steps are host work that
mostly waits on the kernel and on other processes (mounts, netlink, nft, runc), so two
run side by side on two cores.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("gureum.agent")

Step = Callable[[contextlib.ExitStack], None]


def side_by_side(undo: contextlib.ExitStack, *steps: Step) -> None:
    stacks = [contextlib.ExitStack() for _ in steps]
    failures: list[BaseException | None] = [None] * len(steps)

    def run(i: int) -> None:
        try:
            steps[i](stacks[i])
        except BaseException as err:  # raised in the caller's thread below
            failures[i] = err

    threads = [threading.Thread(target=run, args=(i,), name="host-step")
               for i in range(1, len(steps))]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    failure = next((err for err in failures if err is not None), None)
    if failure is not None:
        for stack in reversed(stacks):
            try:
                stack.close()
            except Exception:  # the step's own failure is the one to report
                log.exception("undoing a finished step failed")
        raise failure
    for stack in stacks:
        undo.enter_context(stack)
