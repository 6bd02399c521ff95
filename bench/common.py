"""What every benchmark shares: its own server, percentiles, a table, a leak check."""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gureum.testing import Server  # noqa: E402

console = Console(width=160)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@contextmanager
def bench_server(name: str, max_instances: int = 64,
                 env: dict[str, str] | None = None) -> Iterator[Server]:
    """A fresh server on its own data dir; fails the run if it leaks host objects."""
    data_dir = Path(f"/var/tmp/gureum-bench-{name}-{secrets.token_hex(3)}")
    data_dir.mkdir(mode=0o755)
    server = Server(data_dir)
    server.env["GUREUM_MAX_INSTANCES"] = str(max_instances)
    server.env.update(env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()
    leftovers = {k: v for k, v in server.host_objects().items() if v}
    if leftovers:
        raise SystemExit(f"host objects leaked: {leftovers}")
    if os.environ.get("GUREUM_BENCH_KEEP_LOG"):
        shutil.copy(data_dir / "gureum.log", os.environ["GUREUM_BENCH_KEEP_LOG"])
    shutil.rmtree(data_dir, ignore_errors=True)


def latency_table(title: str, rows: dict[str, list[float]], extra: dict[str, float] | None = None,
                  unit: str = "s") -> Table:
    scale = {"s": 1, "ms": 1e3, "us": 1e6}[unit]
    table = Table(title=title)
    for col in ("measure", f"p50 ({unit})", f"p95 ({unit})", f"min ({unit})", f"max ({unit})", "n"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name, values in rows.items():
        v = [x * scale for x in values]
        table.add_row(name, f"{statistics.median(v):.3f}", f"{pct(v, 0.95):.3f}",
                      f"{min(v):.3f}", f"{max(v):.3f}", str(len(v)))
    for name, value in (extra or {}).items():
        table.add_row(name, f"{value * scale:.3f}", "", "", "", "1")
    return table


def image_named(ec2, kind: str = "default") -> str:  # noqa: ANN001
    """The cloud's default image, or ("systemd") the one with systemd as init."""
    images = ec2.describe_images(Owners=["gureum"])["Images"]
    return next(i["ImageId"] for i in images
                if ("-systemd-" in i["Name"]) == (kind == "systemd"))


def key_and_image(ec2, server: Server, name: str = "bench",  # noqa: ANN001
                  kind: str = "default") -> tuple[Path, str]:
    image = image_named(ec2, kind)
    key = server.data_dir / f"{name}.pem"
    key.write_text(ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    return key, image


def terminate_all(ec2) -> None:  # noqa: ANN001
    from gureum.testing import wait_for

    live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    for start in range(0, len(live), 500):
        ec2.terminate_instances(InstanceIds=live[start:start + 500])
    wait_for(lambda: all(i["State"]["Name"] == "terminated" for r in
                         ec2.describe_instances()["Reservations"] for i in r["Instances"]), 600)
