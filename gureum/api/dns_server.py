"""gureum's public DNS: the authoritative server for the cloud's zones (load balancers'
names, instances' public names), on UDP and TCP at `GUREUM_DNS_LISTEN`
(default 127.0.0.1:8053). Point a parent zone's NS records at it, on a public address
and port 53, and the world resolves your load balancers. It never recurses: names
outside its zones are REFUSED."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from typing import TYPE_CHECKING

from gureum.agent.dns import DnsServer

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.dns")


class PublicDns:
    def __init__(self, cloud: Cloud, host: str, port: int) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for sock in (udp, tcp):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
            tcp.listen(64)
        except OSError:
            udp.close()
            tcp.close()
            raise
        self.server = DnsServer(udp, lambda name, qtype, _client: cloud.public_dns_answers(
            name, qtype), authoritative=True)
        self.tcp = tcp
        self.address = tcp.getsockname()
        self.stopping = threading.Event()
        self.tcp_thread = threading.Thread(target=self._accept, name="dns-tcp", daemon=True)

    def start(self) -> None:
        self.server.start()
        self.tcp_thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.stop()
        with contextlib.suppress(OSError):
            self.tcp.shutdown(socket.SHUT_RDWR)
        self.tcp.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, client = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, client[0]), daemon=True).start()

    def _serve(self, conn: socket.socket, client: str) -> None:
        """RFC 7766: two-byte length, then the message; several per connection."""
        conn.settimeout(10)
        with conn:
            while True:
                try:
                    header = _read(conn, 2)
                    if header is None:
                        return
                    query = _read(conn, struct.unpack("!H", header)[0])
                    if query is None:
                        return
                    reply = self.server.answer(query, client)
                except (OSError, ValueError, struct.error):
                    return
                except Exception:  # a malformed query ends its connection, nothing more
                    log.debug("bad DNS query over TCP from %s", client, exc_info=True)
                    return
                if reply is None:
                    return
                with contextlib.suppress(OSError):
                    conn.sendall(struct.pack("!H", len(reply)) + reply)


def _read(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
