"""The instances' DNS resolver, on the VPC's +2 address and 169.254.169.253 inside each
VPC's router netns (one socket per address, so answers leave from the address asked). It answers the cloud's own names; what a name means
is decided by the control plane through `lookup`. It never forwards: with outbound access
off there is nothing to forward to, and a lookup must never leave the machine."""

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


class DnsServer:
    def __init__(self, sock: socket.socket, lookup: Lookup) -> None:
        self.lookup = lookup
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
        if not request.questions:
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        question = request.questions[0]
        name = str(question.qname).rstrip(".").lower()
        answers = self.lookup(name, QTYPE[question.qtype], client)
        if answers is None:
            reply.header.rcode = RCODE.REFUSED  # not a cloud name, and we never forward
        elif not answers:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in answers or []:
            reply.add_answer(rr)
        return reply.pack()
