"""`gureum logs i-... [--follow]`: the console log, as GetConsoleOutput sees it."""

from __future__ import annotations

import sys
import time

from gureum.config import Config
from gureum.store import models
from gureum.store.db import Store


def stream_console(cfg: Config, instance_id: str, follow: bool) -> int:
    store = Store(cfg.store_url)
    with store.read() as s:
        if s.get(models.Instance, instance_id) is None:
            print(f"gureum: no instance {instance_id}", file=sys.stderr)
            return 1
    path = cfg.instances_dir / instance_id / "console.log"
    position = 0
    while True:
        if path.exists():
            with open(path, "rb") as f:
                f.seek(0, 2)
                if f.tell() < position:  # rotated: start over
                    position = 0
                f.seek(position)
                chunk = f.read()
                position = f.tell()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        if not follow:
            return 0
        with store.read() as s:
            inst = s.get(models.Instance, instance_id)
            if inst is None or inst.state == "terminated":
                return 0
        time.sleep(0.25)
