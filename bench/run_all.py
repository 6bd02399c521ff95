"""`make bench`: run every benchmark, print its table, and write a Markdown summary with
the machine's description under bench/results/ so numbers compare across commits."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["launch.py", "launch_phases.py", "boot.py", "api.py", "network.py", "hosts.py", "density.py", "lb.py",
           "scaling.py", "metrics.py", "storage.py", "deploy.py", "console.py", "neighbours.py"]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo
                if line.startswith("model name")), "unknown")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    return (f"- commit: {commit}\n- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"
            f"- cpu: {cpu} x {os.cpu_count()}\n- memory: {int(mem) // 1024} MiB\n"
            f"- kernel: {platform.release()}\n- python: {platform.python_version()}\n")


def main() -> int:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    parts = [f"# gureum benchmarks {stamp}\n", machine()]
    failed = 0
    for bench in sys.argv[1:] or BENCHES:
        print(f"== {bench}", flush=True)
        proc = subprocess.run([sys.executable, bench], cwd=HERE, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "160"})
        print(proc.stdout, proc.stderr[-2000:] if proc.returncode else "", flush=True)
        parts.append(f"\n## {bench}\n\n```\n{proc.stdout.strip()}\n```\n")
        if proc.returncode:
            failed += 1
            parts.append(f"\nfailed ({proc.returncode}):\n```\n{proc.stderr[-3000:]}\n```\n")
    (results / f"{stamp}.md").write_text("".join(parts))
    print(f"summary written to bench/results/{stamp}.md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
