"""nftables without a process: rulesets go to the kernel through libnftables (the library
the `nft` command is built on), called in this process through its Python binding.

A security group's members are in every member's firewall, so one launch rewrites the
firewall of every instance in its group: with 200, forking `nft` for each cost ~6 ms of
CPU apiece (a fork of this large process, then nft's start) against ~2.5 ms here. A
libnftables context opens its netlink socket where it is made: one made in a thread that
joined a netns (idmap.in_netns) talks to that netns.
"""

from __future__ import annotations

import threading
from pathlib import Path

from nftables import Nftables

from gureum.agent import idmap
from gureum.errors import HostCommandFailed

_first_use = threading.Lock()
_ready = False


def _context() -> Nftables:
    """A fresh context. The library's one-time global set-up (its first context) is not
    safe to race: the first one is made under a lock."""
    global _ready
    if _ready:
        return Nftables()
    with _first_use:
        nft = Nftables()
        _ready = True
        return nft


def run(script: str) -> str:
    """Run an `nft -f` script in the calling thread's netns; its output (e.g. of a list).
    Never JSON output here: libnftables builds it with strtok(3), whose state is global,
    and two threads listing at once aborted this whole process (an assertion in its
    json.c). JSON listings fork `nft -j`."""
    rc, output, error = _context().cmd(script)
    if rc != 0:
        raise HostCommandFailed(["nft", "-f", "-"], rc, error or output)
    return output


def run_in(netns_path: Path | str, script: str) -> str:
    """Run an `nft -f` script inside a network namespace."""
    return idmap.in_netns(str(netns_path), lambda: run(script))
