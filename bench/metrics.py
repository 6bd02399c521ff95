"""CloudWatch metrics: PutMetricData throughput (boto3, side by side with moto's server),
and GetMetricData latency and storage cost over the layout 15 days of 10-s data for 100
instances leaves after retention (3 hours of 10-s points, then one set per minute).

The 15 days are written straight into the store in the layout `retention.compact`
produces (putting 13 million points through the API would take hours); the reads go
through the API like any client's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from common import bench_server, console, latency_table
from rich.table import Table

from gureum.testing import free_port, wait_for

INSTANCES = 100


def batch(n: int, offset: int) -> list[dict]:
    now = dt.datetime.now(dt.UTC)
    return [{"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": f"h{i % 50}"}],
             "Timestamp": now - dt.timedelta(seconds=(offset + i) % 600), "Value": float(i),
             "StorageResolution": 1} for i in range(n)]


def put_rate(cw, requests: int, per_request: int) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    for r in range(requests):
        cw.put_metric_data(Namespace="Bench", MetricData=batch(per_request, r * per_request))
    return requests * per_request / (time.perf_counter() - t0)


def seed(db: Path, account: str, days: int) -> int:
    """CPUUtilization of INSTANCES instances: `days` of minute sets, the last 3 hours as
    10-s points; returns the rows written."""
    now = int(time.time()) // 60 * 60
    fine_from = now - 3 * 3600
    conn = sqlite3.connect(db)
    rows = 0
    for n in range(INSTANCES):
        dims = json.dumps([["InstanceId", f"i-{n:017x}"]])
        series = conn.execute("INSERT INTO metric_series (account_id, namespace, name, "
                              "dimensions, unit) VALUES (?,?,?,?,?)",
                              (account, "AWS/EC2", "CPUUtilization", dims, "Percent")).lastrowid
        minutes = [(series,
                    dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.000000"),
                    6.0, 6.0 * (n % 100), float(n % 100), float(n % 100), 60)
                   for t in range(now - days * 86400, fine_from, 60)]
        fine = [(series,
                 dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.000000"),
                 1.0, float(n % 100), float(n % 100), float(n % 100), 0)
                for t in range(fine_from, now, 10)]
        conn.executemany("INSERT INTO metric_points (series_id, timestamp, sample_count, sum, "
                         "minimum, maximum, resolution) VALUES (?,?,?,?,?,?,?)", minutes + fine)
        rows += len(minutes) + len(fine)
    conn.commit()
    conn.close()
    return rows


def query(instance: int, period: int) -> dict:
    return {"Id": f"m{instance}", "MetricStat": {"Metric": {
        "Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "InstanceId", "Value": f"i-{instance:017x}"}]},
        "Period": period, "Stat": "Average"}}


def timed(call, reps: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(port), 30)
        moto_cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}",
                               region_name="us-east-1", aws_access_key_id="testing",
                               aws_secret_access_key="testing")
        with bench_server("metrics") as server:
            cw = server.client("cloudwatch")
            ours, theirs = [], []
            for _ in range(3):  # alternating, so a noisy neighbour slows both alike
                ours.append(put_rate(cw, 10, 1000))
                theirs.append(put_rate(moto_cw, 10, 1000))
            table = Table(title="PutMetricData: 10 requests x 1000 points, 3 rounds")
            for col in ("server", "points/s (median)", "vs moto"):
                table.add_column(col, justify="left" if col == "server" else "right")
            base = statistics.median(theirs)
            table.add_row("gureum", f"{statistics.median(ours):,.0f}",
                          f"{statistics.median(ours) / base:.2f}x")
            table.add_row("moto", f"{base:,.0f}", "1.00x")
            console.print(table)

            server.stop()
            db = server.data_dir / "gureum.db"
            account = sqlite3.connect(db).execute(
                "SELECT account_id FROM accounts WHERE name = 'default'").fetchone()[0]
            t0 = time.perf_counter()
            rows = seed(db, account, args.days)
            seeded = time.perf_counter() - t0
            server.start()
            size = sum(f.stat().st_size for f in server.data_dir.glob("gureum.db*"))
            cw = server.client("cloudwatch")
            end = dt.datetime.now(dt.UTC)
            cases = {
                f"1 instance, {args.days} days, 1-h periods": (
                    [query(0, 3600)], end - dt.timedelta(days=args.days)),
                "1 instance, 3 hours, 10-s periods": ([query(1, 10)], end - dt.timedelta(hours=3)),
                f"{INSTANCES} instances, 1 day, 5-min periods": (
                    [query(n, 300) for n in range(INSTANCES)], end - dt.timedelta(days=1)),
            }
            latencies = {}
            for name, (queries, start) in cases.items():
                def call(q=queries, s=start) -> None:  # noqa: ANN001
                    out = cw.get_metric_data(MetricDataQueries=q, StartTime=s, EndTime=end)
                    assert all(r["Values"] for r in out["MetricDataResults"])
                latencies[f"GetMetricData: {name}"] = timed(call, args.reps)
            console.print(latency_table(f"GetMetricData over {args.days} days of 10-s data for "
                                        f"{INSTANCES} instances, after retention", latencies))
            table = Table(title="storage")
            for col in ("rows", "database bytes", "bytes per row", "per instance-metric, 15 days",
                        "seeding time (s)"):
                table.add_column(col, justify="right")
            table.add_row(f"{rows:,}", f"{size:,}", f"{size / rows:.0f}",
                          f"{size / INSTANCES / 2**20:.1f} MiB", f"{seeded:.1f}")
            console.print(table)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    return 0


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
