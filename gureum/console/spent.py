"""Ids the console must refuse from now on (used sign-in links, signed-out sessions), each
until it would have expired anyway: kept in a 0600 file of the data directory, so a
restart or another control plane on this host refuses them too.

One line per id ("<id> <expiry epoch>"); a `flock` makes spending atomic across
processes (a link signs in once, even raced from two servers); readers re-read only when
the file changed, so a check costs a stat.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SpentIds:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._ids: dict[str, float] = {}
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of what _ids holds

    def spend(self, spent_id: str, until: float) -> bool:
        """Mark `spent_id` spent until `until` (epoch seconds); False if it already was."""
        now = time.time()
        with self._lock, self._file(fcntl.LOCK_EX) as fd:
            ids = self._read(fd)
            if ids.get(spent_id, 0) > now:
                return False
            live = {k: v for k, v in ids.items() if v > now}
            if len(live) < len(ids) // 2:  # mostly expired: write the live ones alone
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, "".join(f"{k} {v:.0f}\n" for k, v in live.items()).encode())
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, f"{spent_id} {until:.0f}\n".encode())
            live[spent_id] = until
            self._ids = live
            self._seen = self._stamp(fd)
        return True

    def __contains__(self, spent_id: object) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        with self._lock:
            if (stat.st_mtime_ns, stat.st_size) != self._seen:
                with self._file(fcntl.LOCK_SH) as fd:
                    self._ids, self._seen = self._read(fd), self._stamp(fd)
            return self._ids.get(str(spent_id), 0) > time.time()

    @contextmanager
    def _file(self, mode: int) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _read(fd: int) -> dict[str, float]:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        ids = {}
        for line in b"".join(chunks).decode(errors="replace").splitlines():
            key, _, until = line.partition(" ")
            try:
                ids[key] = float(until)
            except ValueError:
                continue  # a line cut short by a crash: nothing to honour
        return ids

    @staticmethod
    def _stamp(fd: int) -> tuple[int, int]:
        stat = os.fstat(fd)
        return stat.st_mtime_ns, stat.st_size
