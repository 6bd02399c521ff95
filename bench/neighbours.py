"""Noisy neighbours: a t3.micro's HTTP latency while a t2.micro next door makes each kind
of noise (CPU spinners, a memory hog, a disk filler, a fork bomb), then all at once, and
a harsher disk filler that refills the disk for as long as it runs, and clients asking
the metadata service (the agent's) without pause.

Calm and noisy samples alternate in blocks (the noisy instance frozen, then thawed:
gureum/testing_neighbours.py), so other work on the machine weighs on both alike.
Target (issue 16): noisy p99 within 2x of calm p99 with all the noise at once."""

from __future__ import annotations

import argparse
import statistics

from common import bench_server, console, key_and_image
from rich.table import Table

from gureum import testing_neighbours as neighbours


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=8, help="calm/noisy block pairs per row")
    parser.add_argument("--per-block", type=int, default=40, help="requests per block")
    parser.add_argument("--noise", default="cpu,memory,disk,forks,all,disk-loop,imds",
                        help="rows: kinds of noise, comma-separated ('all': the four of the "
                             "target at once; 'disk-loop': a disk filler that never stops; "
                             "'imds': the metadata service asked without pause)")
    args = parser.parse_args()
    table = Table(title="A neighbour's HTTP latency next to a noisy t2.micro (ms)")
    for col in ("noise", "calm p50", "calm p99", "noisy p50", "noisy p99", "p99 ratio",
                "noisy CPU s", "failures"):
        table.add_column(col, justify="left" if col == "noise" else "right")
    with bench_server("neighbours") as server:
        ec2 = server.client()
        key, image = key_and_image(ec2, server)
        for row in args.noise.split(","):
            kinds = tuple(neighbours.NOISE) if row == "all" else (row,)
            f = neighbours.measure(ec2, image, ("bench", key), kinds, args.blocks, args.per_block)
            table.add_row(row, f"{statistics.median(f.calm) * 1e3:.1f}",
                          f"{neighbours.p99(f.calm) * 1e3:.1f}",
                          f"{statistics.median(f.noisy) * 1e3:.1f}",
                          f"{neighbours.p99(f.noisy) * 1e3:.1f}", f"{f.ratio:.2f}",
                          f"{f.noisy_cpu_seconds:.1f}", str(f.failures))
            console.print(f"{row}: {f.line()}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
