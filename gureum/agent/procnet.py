"""Listening TCP sockets read from /proc/<pid>/net/tcp{,6}: no subprocess, no packet."""

from __future__ import annotations

from collections.abc import Iterator

LISTEN = "0A"


def _listeners(proc_net: str) -> Iterator[tuple[str, int, str]]:
    """(hex address, port, socket inode) of each listening socket in the netns `proc_net`
    names ("/proc/net", "/proc/<pid>/net"); an unreadable table is skipped."""
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{proc_net}/{table}") as f:
                next(f)
                rows = [line.split() for line in f]
        except (OSError, StopIteration):
            continue
        for fields in rows:
            try:
                host, _, hexport = fields[1].rpartition(":")
                if fields[3] == LISTEN:
                    yield host, int(hexport, 16), fields[9]
            except (IndexError, ValueError):
                continue


def listening(proc_net: str, port: int, addresses: set[str] | None = None) -> bool:
    """Whether a socket listens on `port` in the netns `proc_net` names; with
    `addresses`, only on one of those IPv4 addresses (an IPv6 socket on every address
    counts too)."""
    for host, hexport, _inode in _listeners(proc_net):
        if hexport != port:
            continue
        if addresses is None or host.strip("0") == "":
            return True
        if len(host) == 8 and ".".join(
                str(b) for b in reversed(bytes.fromhex(host))) in addresses:
            return True
    return False


def listening_inodes(proc_net: str) -> set[str]:
    """The inodes of every listening socket in the netns `proc_net` names: a process
    holding one (a `socket:[inode]` link in /proc/<pid>/fd) can accept on it."""
    return {inode for _host, _port, inode in _listeners(proc_net)}
