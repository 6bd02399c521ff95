"""The instances' DNS resolver, on the VPC's +2 address and 169.254.169.253 inside each
VPC's router netns (one socket per address, so answers leave from the address asked).

It answers the cloud's own names; what a name means is decided by the control plane
through `lookup`. Other names are forwarded to the host's resolvers only for callers that
`may_forward` (outbound access on and the caller's subnet routed to an internet gateway);
otherwise REFUSED, so a lookup never leaves the machine. Reverse lookups are always
answered here."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

from dnslib import QTYPE, RCODE, RR, DNSRecord

log = logging.getLogger("gureum.dns")
# (query name, query type name, client address) -> answers, or None when not ours.
Lookup = Callable[[str, str, str], list[RR] | None]
FORWARD_TIMEOUT = 2.0


class DnsServer:
    def __init__(self, sock: socket.socket, lookup: Lookup,
                 may_forward: Callable[[str], bool] = lambda client: False,
                 upstreams: tuple[tuple[str, int], ...] = (), authoritative: bool = False) -> None:
        self.lookup = lookup
        self.authoritative = authoritative
        self.may_forward = may_forward
        self.upstreams = upstreams
        self.sock = sock  # bound UDP
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="dns", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                data, client = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                reply = self.answer(data, client[0])
            except Exception:  # a malformed query gets no answer, never a crash
                log.debug("bad DNS query from %s", client[0], exc_info=True)
                continue
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.sock.sendto(reply, client)

    def answer(self, data: bytes, client: str) -> bytes | None:
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.header.aa = int(self.authoritative)
        reply.header.ra = 0 if self.authoritative else reply.header.ra
        if not request.questions:
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        question = request.questions[0]
        name = str(question.qname).rstrip(".").lower()
        answers = self.lookup(name, QTYPE[question.qtype], client)
        if answers is None and self.upstreams and self.may_forward(client):
            forwarded = self._forward(data)
            if forwarded is not None:
                return forwarded
        if answers is None:
            reply.header.rcode = RCODE.REFUSED  # not a cloud name, and not forwarded
        elif not answers:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in answers or []:
            reply.add_answer(rr)
        return reply.pack()

    def _forward(self, query: bytes) -> bytes | None:
        """The first upstream's answer (from the host's namespace), or None."""
        for host, port in self.upstreams:
            with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(FORWARD_TIMEOUT)
                up.sendto(query, (host, port))
                return up.recv(4096)
        return None


def host_resolvers(resolv_conf: str = "/etc/resolv.conf") -> tuple[tuple[str, int], ...]:
    """The host's IPv4 nameservers, where forwarded queries go."""
    out = []
    try:
        with open(resolv_conf) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver" and "." in fields[1]:
                    out.append((fields[1], 53))
    except OSError:
        pass
    return tuple(out)
