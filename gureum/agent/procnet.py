"""Listening TCP sockets read from /proc/<pid>/net/tcp{,6}: no subprocess, no packet."""

from __future__ import annotations

LISTEN = "0A"


def listening(proc_net: str, port: int, addresses: set[str] | None = None) -> bool:
    """Whether a socket listens on `port` in the netns `proc_net` names ("/proc/net",
    "/proc/<pid>/net"); with `addresses`, only on one of those IPv4 addresses (an IPv6
    socket on every address counts too)."""
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{proc_net}/{table}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    host, _, hexport = fields[1].rpartition(":")
                    if fields[3] != LISTEN or int(hexport, 16) != port:
                        continue
                    if addresses is None or host.strip("0") == "":
                        return True
                    if len(host) == 8 and ".".join(
                            str(b) for b in reversed(bytes.fromhex(host))) in addresses:
                        return True
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return False
