"""Root disks made ahead of demand: a few sparse, formatted ext4 files of the default
size wait in the volume store's `pool/`, so a launch renames one into place instead of running
mkfs in its path. A background thread refills the pool at low priority after each take;
a burst bigger than the pool falls back to making disks as before.

Every instance still gets a disk of its own (a pooled disk is used once), formatted
fresh, owned by its own uid range (the root directory is chowned at mount).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from gureum.agent import storage

log = logging.getLogger("gureum.disks")
DEFAULT_GIB = 8
DEPTH = 4


class DiskPool:
    def __init__(self, directory: Path, size_gib: int = DEFAULT_GIB, depth: int = DEPTH,
                 ensure: Callable[[], object] | None = None) -> None:
        self.dir = directory
        self.ensure = ensure or (lambda: None)  # the filesystem holding `directory` is there
        self.size_gib = size_gib
        self.depth = depth
        self.wanted = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stopped = False

    def ready(self) -> list[Path]:
        return sorted(self.dir.glob("ready-*.img")) if self.dir.exists() else []

    def take(self, disk: Path, size_gib: int) -> bool:
        """Move a ready disk to `disk` (same filesystem: one atomic rename); False when
        none of that size waits. Wakes the refill either way."""
        self._start()
        self.wanted.set()
        self.ensure()
        if size_gib != self.size_gib:
            return False
        with self.lock:
            for candidate in self.ready():
                with contextlib.suppress(FileNotFoundError):
                    candidate.rename(disk)
                    return True
        return False

    def refill(self) -> None:
        """Make disks until `depth` wait. Staging names first, so a crash leaves no
        half-made disk under a ready name."""
        self.ensure()
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob("*.new"):
            stale.unlink(missing_ok=True)
        while len(self.ready()) < self.depth and not self.stopped:
            made = self.dir / f"make-{os.getpid()}-{threading.get_ident()}.img"
            storage.create_disk(made, self.size_gib, 0, nice=True)
            made.rename(self.dir / f"ready-{os.urandom(6).hex()}.img")

    def _start(self) -> None:
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, name="disk-pool",
                                                   daemon=True)
                    self.thread.start()

    def stop(self) -> None:
        """Refills stop; waits for one under way (its files are open in the store). The
        next take starts them again."""
        self.stopped = True
        self.wanted.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
        self.thread, self.stopped = None, False

    def _loop(self) -> None:
        while not self.stopped:
            self.wanted.wait()
            self.wanted.clear()
            if self.stopped:
                return
            try:
                self.refill()
            except Exception as err:  # a full disk, a failing mkfs: launches make their own
                log.warning("disk pool refill failed: %s", err)
