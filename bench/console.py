"""Web console page load: the instance list with 200 instances.

Server time is the page's own Server-Timing (the console's work: DescribeInstances
through the handler, filtering, rendering); DOMContentLoaded is measured by Debian's
chromium (Playwright) loading the page. The control plane runs in this process against
the in-memory FakeAgent (rows and states are real; no containers): page cost does not
depend on what an instance is. Targets (issue #14): server < 300 ms, DCL < 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import console, latency_table

from gureum.agent.fake import FakeAgent
from gureum.cli.up import start_cloud
from gureum.config import Config
from gureum.console.testing import ConsoleClient
from gureum.testing import free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    import boto3

    data_dir = Path(tempfile.mkdtemp(prefix="gureum-bench-console-"))
    cfg = Config(data_dir=data_dir, port=free_port(), image_cache=data_dir / "images",
                 rate_limit=0, max_instances_per_account=args.instances + 10,
                 dns_listen=f"127.0.0.1:{free_port()}")
    running = start_cloud(cfg, agent=FakeAgent())
    try:
        ec2 = boto3.client("ec2", endpoint_url=cfg.endpoint, region_name=cfg.region,
                           aws_access_key_id=running.access_key,
                           aws_secret_access_key=running.secret_key)
        image = ec2.describe_images()["Images"][0]["ImageId"]
        left = args.instances
        while left:
            batch = min(left, 50)
            ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=batch,
                              MaxCount=batch, TagSpecifications=[{
                                  "ResourceType": "instance",
                                  "Tags": [{"Key": "Name", "Value": "bench"},
                                           {"Key": "team", "Value": "console"}]}])
            left -= batch
        wait_for(lambda: all(i["State"]["Name"] == "running" for r in
                             ec2.describe_instances()["Reservations"] for i in r["Instances"]),
                 120, interval=0.5)
        link = running.server.console.sign_in_url(running.account_id)
        client = ConsoleClient(cfg.port)
        client.sign_in_link(link)
        rows = client.get("/console/instances").text.count('<tr id="row-')
        assert rows == args.instances, rows
        server_ms, total, fragment = [], [], []
        for _ in range(args.samples):
            t0 = time.perf_counter()
            answer = client.get("/console/instances")
            total.append(time.perf_counter() - t0)
            server_ms.append(float(answer.headers["server-timing"].split("dur=")[1]) / 1000)
            answer = client.get("/console/instances/rows")
            fragment.append(float(answer.headers["server-timing"].split("dur=")[1]) / 1000)
        dcl = browser_dcl(cfg.port, running.server.console.sign_in_url(running.account_id),
                          max(5, args.samples // 3))
        console.print(latency_table(
            f"console instance list, {args.instances} instances (in-process, FakeAgent)", {
                "server time, full page": server_ms,
                "server time, live-refresh rows": fragment,
                "HTTP round trip, full page": total,
                "chromium DOMContentLoaded": dcl,
            }, unit="ms"))
    finally:
        running.shutdown()
    return 0


def browser_dcl(port: int, link: str, samples: int) -> list[float]:
    """DOMContentLoaded of the list page in chromium (navigation timing), in seconds."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(link)
        for _ in range(samples):
            page.goto(f"http://127.0.0.1:{port}/console/instances")
            out.append(page.evaluate("performance.getEntriesByType('navigation')[0]"
                                     ".domContentLoadedEventEnd") / 1000)
        browser.close()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
