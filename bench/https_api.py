"""The API over HTTPS against plain HTTP, both on loopback, in this process against the
in-memory FakeAgent (what is measured is the front door, not an instance):

- keep-alive: DescribeInstances through one boto3 client (TLS already set up);
- new connection: GET /ping on a fresh connection each time (TCP + TLS handshake with
  the cloud CA's P-256 certificate + request), as a CLI invocation pays once.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import tempfile
import time
from pathlib import Path

from common import console, latency_table

from gureum.api.tls import client_verify
from gureum.testing_inprocess import FastCloud


def measure(cloud: FastCloud, n: int) -> tuple[list[float], list[float]]:
    ec2 = cloud.client()
    ec2.describe_instances()  # connection and credentials warm
    kept = []
    for _ in range(n):
        started = time.perf_counter()
        ec2.describe_instances()
        kept.append(time.perf_counter() - started)
    bundle = client_verify(cloud.config)
    context = ssl.create_default_context(cafile=bundle) if bundle else None
    fresh = []
    for _ in range(n):
        started = time.perf_counter()
        conn = (http.client.HTTPSConnection("127.0.0.1", cloud.port, context=context)
                if context else http.client.HTTPConnection("127.0.0.1", cloud.port))
        conn.request("GET", "/ping")
        conn.getresponse().read()
        conn.close()
        fresh.append(time.perf_counter() - started)
    return kept, fresh


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for label, settings in (("http", {"api_tls": "0"}), ("https", {"api_tls": "1"})):
        cloud = FastCloud(Path(tempfile.mkdtemp(prefix=f"gureum-bench-{label}-")), **settings)
        try:
            kept, fresh = measure(cloud, args.samples)
        finally:
            cloud.stop()
        rows[f"{label} DescribeInstances, keep-alive"] = kept
        rows[f"{label} GET /ping, new connection"] = fresh
    console.print(latency_table("API front door: HTTPS vs plain HTTP (loopback)", rows,
                                unit="ms"))


if __name__ == "__main__":
    main()
