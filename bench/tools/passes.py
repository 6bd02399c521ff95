"""Reads passprobe rows and a probe's MARKS: control-loop CPU in passes that start inside
the launch windows, and the host steps' median wall time there.

    python tools/passes.py PASSES MARKS
"""

from __future__ import annotations

import collections
import statistics
import sys
from pathlib import Path


def main() -> None:
    rows = [line.split() for line in Path(sys.argv[1]).read_text().splitlines()]
    marks = [tuple(map(float, line.split())) for line in Path(sys.argv[2]).read_text().splitlines()]

    def inside(t: str) -> bool:
        return any(a <= float(t) <= b for a, b in marks)
    cpu: collections.Counter[str] = collections.Counter()
    passes: collections.Counter[str] = collections.Counter()
    host: dict[str, list[float]] = collections.defaultdict(list)
    for start, name, cpu_ms, wall_ms, _ in rows:
        if name == "COMMIT" or not inside(start):
            continue
        if name.startswith("HOST:"):
            host[name[5:]].append(float(wall_ms))
        else:
            cpu[name] += float(cpu_ms)
            passes[name] += 1
    print("control-loop CPU in passes starting inside the windows (ms):")
    for name, total in cpu.most_common():
        print(f"  {name:26s} {total:7.0f}  ({passes[name]} passes)")
    for name, walls in sorted(host.items()):
        print(f"  host {name:21s} n={len(walls):3d} median {statistics.median(walls):6.1f} ms")


if __name__ == "__main__":
    main()
