"""Listening TCP sockets of a network namespace, asked of the kernel's sock_diag netlink
interface: no subprocess, no packet.

Not /proc/<pid>/net/tcp: reading it walks the kernel's whole established-connection hash
table, sized by the host's memory and shared by every netns, 3.3 ms a read here even on
an idle host (tcp and tcp6: 6.6 ms), and launches poll it. A LISTEN-only dump walks the
listening table alone (tens of microseconds).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from gureum.agent.idmap import in_netns

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
# inet_diag_req_v2: family, protocol, extensions, pad, states, then a zero inet_diag_sockid.
_REQUEST = struct.Struct("=BBBBI48x")
# inet_diag_msg: family, state, timer, retransmits, sockid (ports big-endian, source
# address, destination address, interface, cookie), expires, queues, uid, inode.
_MESSAGE = struct.Struct("=BBBB2sH16s16sI8sIIIII")

Listener = tuple[str, int, int]  # (address, port, socket inode)


def _dump(family: int) -> list[Listener]:
    """The listening TCP sockets of one address family in this thread's netns."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
        sock.send(_HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY,
                               NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
        out: list[Listener] = []
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    (errno,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                    raise OSError(-errno, "sock_diag dump failed")
                fields = _MESSAGE.unpack_from(data, offset + _HEADER.size)
                raw = fields[6][:4] if family == socket.AF_INET else fields[6]
                port = int.from_bytes(fields[4], "big")
                out.append((str(ipaddress.ip_address(raw)), port, fields[14]))
                offset += (length + 3) & ~3
                if length == 0:
                    return out


def _all() -> list[Listener]:
    return _dump(socket.AF_INET) + _dump(socket.AF_INET6)


def listeners(netns: str | None = None) -> list[Listener]:
    """Every listening TCP socket in the netns at path `netns` (a /run/netns/<name> or
    /proc/<pid>/ns/net file; None: the host's). A netns that is gone has none."""
    try:
        return _all() if netns is None else in_netns(netns, _all)
    except OSError:
        return []


def listening(netns: str | None, port: int, addresses: set[str] | None = None) -> bool:
    """Whether a socket listens on `port` in `netns`; with `addresses`, only on one of
    those addresses (a socket on every address, 0.0.0.0 or ::, counts too)."""
    for host, bound, _inode in listeners(netns):
        if bound != port:
            continue
        if addresses is None or ipaddress.ip_address(host).is_unspecified or host in addresses:
            return True
    return False


def listening_inodes(netns: str | None) -> set[int]:
    """The inodes of every listening socket in `netns`: a process holding one (a
    `socket:[inode]` link in /proc/<pid>/fd) can accept on it."""
    return {inode for _host, _port, inode in listeners(netns)}
