"""`gureum deploy` of the Python fixture app (tests/deploy_apps/python), end to end through
the shared ALB, with a steady request stream (20 requests/s, a new connection each):

- first deploy: command -> first 200 from its URL (target < 10 s);
- redeploy: command -> all traffic on the new release (from then on only new answers;
  target < 10 s for 2 instances), and failed requests during it (target 0);
- rollback: command -> all traffic on the old release (target < 5 s);
each round from nothing (destroy between rounds); medians of the rounds.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import bench_server, console
from rich.table import Table

from gureum.testing import VENV_BIN, RequestStream, Server, offline_pip_env

PIP_ENV = offline_pip_env()  # the fixture's dependency from the machine's own index

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "deploy_apps" / "python"
HOST = "bench.gureum-1.apps.gureum.internal"


def fetch(address: str) -> str:
    """The release that answered ("v1"); ValueError for an answer other than 200."""
    conn = http.client.HTTPConnection(address, 80, timeout=3)
    try:
        conn.request("GET", "/", headers={"Host": HOST})
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise ValueError(f"{resp.status} {body[:80]}")
        return body.split()[1]
    finally:
        conn.close()


def _answers(address: str) -> str | None:
    try:
        return fetch(address)
    except (OSError, ValueError):
        return None


def gureum(server: Server, *args: str) -> None:
    out = subprocess.run([str(VENV_BIN / "gureum"), *args], env={**server.env, **PIP_ENV},
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"gureum {' '.join(args)} failed:\n{out.stderr[-3000:]}")


def one_round(server: Server, app: Path) -> dict[str, float]:
    (app / "version.txt").write_text("v1\n")
    started = time.monotonic()
    proc = subprocess.Popen([str(VENV_BIN / "gureum"), "deploy", str(app), "--name", "bench"],
                            env={**server.env, **PIP_ENV}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            text=True)
    elb = server.client("elbv2")
    address, first = None, None
    while first is None:
        if address is None:
            try:
                lb = elb.describe_load_balancers(Names=["gureum-apps"])["LoadBalancers"][0]
                address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
            except Exception:  # noqa: BLE001 (not made yet)
                pass
        if address and _answers(address) == "v1":
            first = time.monotonic() - started
        elif proc.poll() not in (None, 0):
            raise SystemExit(f"first deploy failed: {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    proc.wait()
    assert address is not None
    out: dict[str, float] = {"first deploy -> first 200 (s)": first,
                             "first deploy command (s)": time.monotonic() - started}
    (app / "version.txt").write_text("v2\n")
    with RequestStream(lambda: fetch(address)) as stream:
        time.sleep(1)
        since = time.monotonic()
        gureum(server, "deploy", str(app), "--name", "bench")
        out["redeploy command (s)"] = time.monotonic() - since
        time.sleep(1)
        out["redeploy -> all traffic on new (s)"] = stream.all_on("v2", since)
        out["failed requests during redeploy"] = len(stream.failures(since))
        since = time.monotonic()
        gureum(server, "rollback", "bench")
        out["rollback command (s)"] = time.monotonic() - since
        time.sleep(1)
        out["rollback -> all traffic on old (s)"] = stream.all_on("v1", since)
        out["failed requests during rollback"] = len(stream.failures(since))
    gureum(server, "destroy", "bench", "--yes")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    with bench_server("deploy") as server:
        app = server.data_dir / "apps" / "bench"
        shutil.copytree(FIXTURE, app)
        for i in range(args.rounds):
            result = one_round(server, app)
            console.print(f"round {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                           result.items()))
            for key, value in result.items():
                rows.setdefault(key, []).append(value)
    table = Table(title=f"gureum deploy (Python fixture, 2 instances, {args.rounds} rounds)")
    for col in ("measure", "median", "min", "max", "target"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    targets = {"first deploy -> first 200 (s)": "< 10", "redeploy -> all traffic on new (s)":
               "< 10", "rollback -> all traffic on old (s)": "< 5",
               "failed requests during redeploy": "0", "failed requests during rollback": "0"}
    for key, values in rows.items():
        table.add_row(key, f"{statistics.median(values):.1f}", f"{min(values):.1f}",
                      f"{max(values):.1f}", targets.get(key, ""))
    console.print(table)


if __name__ == "__main__":
    main()
