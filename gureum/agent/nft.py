"""nftables without a process: rulesets go to the kernel through libnftables (the library
the `nft` command is built on), called in this process through ctypes.

A security group's members are in every member's firewall, so one launch rewrites the
firewall of every instance in its group: with 200, forking `nft` for each cost ~6 ms of
CPU apiece (a fork of this large process, then nft's start) against ~2.5 ms here. A
libnftables context opens its netlink socket where it is made: one made in a thread that
joined a netns (idmap.in_netns) talks to that netns.

The library's own Python binding (python3-nftables) loads the library and declares its
functions again for every context: here they are declared once. Each call releases the
GIL while libnftables works. Holding it instead (ctypes.PyDLL) was tried for the fan-out
of one change to many netns: with 1,000 instances a launch then took 2.2 s instead of
0.42 s, its threads waiting for the GIL behind each write.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

from gureum.agent import idmap
from gureum.errors import HostCommandFailed

SONAME = "libnftables.so.1"


class _Library:
    """The calls of libnftables a script needs, declared once."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.new = lib.nft_ctx_new
        self.new.restype, self.new.argtypes = ctypes.c_void_p, [ctypes.c_int]
        self.free = lib.nft_ctx_free
        self.free.restype, self.free.argtypes = None, [ctypes.c_void_p]
        self.buffer_output, self.buffer_error = lib.nft_ctx_buffer_output, lib.nft_ctx_buffer_error
        self.output, self.error = lib.nft_ctx_get_output_buffer, lib.nft_ctx_get_error_buffer
        for fn, restype in ((self.buffer_output, ctypes.c_int), (self.buffer_error, ctypes.c_int),
                            (self.output, ctypes.c_char_p), (self.error, ctypes.c_char_p)):
            fn.restype, fn.argtypes = restype, [ctypes.c_void_p]
        self.run = lib.nft_run_cmd_from_buffer
        self.run.restype, self.run.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]


_first_use = threading.Lock()
_loaded: list[_Library] = []


def _library() -> _Library:
    """Loaded on first use. The library's one-time global set-up (its first context) is
    not safe to race: the first one is made under a lock."""
    if _loaded:
        return _loaded[0]
    with _first_use:
        if not _loaded:
            lib = _Library(ctypes.CDLL(SONAME))
            lib.free(lib.new(0))
            _loaded.append(lib)
        return _loaded[0]


def run(script: str) -> str:
    """Run an `nft -f` script in the calling thread's netns; its output (e.g. of a list).
    Never JSON output here: libnftables builds it with strtok(3), whose state is global,
    and two threads listing at once aborted this whole process (an assertion in its
    json.c). JSON listings fork `nft -j`."""
    lib = _library()
    context = lib.new(0)
    if not context:
        raise HostCommandFailed(["nft", "-f", "-"], -1, "libnftables: no context")
    try:
        lib.buffer_output(context)
        lib.buffer_error(context)
        rc = lib.run(context, script.encode())
        output = (lib.output(context) or b"").decode(errors="replace")
        error = (lib.error(context) or b"").decode(errors="replace")
    finally:
        lib.free(context)
    if rc != 0:
        raise HostCommandFailed(["nft", "-f", "-"], rc, error or output)
    return output


def run_in(netns_path: Path | str, script: str) -> str:
    """Run an `nft -f` script inside a network namespace."""
    return idmap.in_netns(str(netns_path), lambda: run(script))
