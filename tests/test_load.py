"""A bounded load run: concurrent boto3 clients doing mixed work on one account.

Zero unexpected errors, no "database is locked", no lost or duplicated instance, and the
final state matches what every client was told. GUREUM_LOAD_SECONDS / GUREUM_LOAD_CLIENTS
lengthen or widen it (defaults keep `make test` short).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from collections import Counter

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from helpers import VENV_BIN, wait_for

SECONDS = float(os.environ.get("GUREUM_LOAD_SECONDS", "15"))
CLIENTS = int(os.environ.get("GUREUM_LOAD_CLIENTS", "50"))


def test_mixed_load(server, image_id):
    out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir), "account",
                          "create", f"load-{time.time_ns()}"], capture_output=True, text=True,
                         check=True).stdout
    creds = json.loads(out)
    config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=4)

    def client():  # noqa: ANN202
        return boto3.session.Session().client(
            "ec2", endpoint_url=server.endpoint, region_name="gureum-1",
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            config=config)

    errors: Counter[str] = Counter()
    launched: list[str] = []
    terminated: list[str] = []
    tagged: dict[str, str] = {}
    lock = threading.Lock()
    calls: Counter[str] = Counter()
    clients = [client() for _ in range(CLIENTS)]  # made first: the clock measures calls only
    deadline = time.monotonic() + SECONDS

    def worker(n: int) -> None:
        rng = random.Random(n)
        ec2 = clients[n]
        mine: list[str] = []
        while time.monotonic() < deadline:
            op = rng.random()
            try:
                if op < 0.03 and n % 2 == 0 and len(mine) < 1:
                    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano",
                                            MinCount=1, MaxCount=1)
                    iid = res["Instances"][0]["InstanceId"]
                    mine.append(iid)
                    with lock:
                        launched.append(iid)
                    with lock:
                        calls["RunInstances"] += 1
                elif op < 0.05 and mine:
                    iid = mine.pop()
                    ec2.terminate_instances(InstanceIds=[iid])
                    with lock:
                        terminated.append(iid)
                    with lock:
                        calls["TerminateInstances"] += 1
                elif op < 0.25 and mine:
                    value = f"{n}-{rng.random():.6f}"
                    ec2.create_tags(Resources=[mine[-1]], Tags=[{"Key": "owner", "Value": value}])
                    with lock:
                        tagged[mine[-1]] = value
                    with lock:
                        calls["CreateTags"] += 1
                elif op < 0.35:
                    ec2.describe_tags(Filters=[{"Name": "key", "Values": ["owner"]}])
                    with lock:
                        calls["DescribeTags"] += 1
                else:
                    ec2.describe_instances(Filters=[{"Name": "instance-state-name",
                                                     "Values": ["pending", "running"]}])
                    with lock:
                        calls["DescribeInstances"] += 1
            except ClientError as err:
                with lock:
                    errors[err.response["Error"]["Code"]] += 1
            except Exception as err:  # transport failures count too
                with lock:
                    errors[type(err).__name__] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"load: {CLIENTS} clients, {SECONDS:.0f} s, calls {dict(calls)}, "
          f"{sum(calls.values()) / SECONDS:.0f} calls/s, errors {dict(errors)}")
    assert not errors, f"unexpected errors: {dict(errors)} over {dict(calls)}"
    assert sum(calls.values()) >= CLIENTS, f"the load run made too few calls: {dict(calls)}"
    assert calls["RunInstances"] > 0, "the load run launched nothing"
    assert "database is locked" not in (server.data_dir / "gureum.log").read_text()
    assert len(launched) == len(set(launched))
    ec2 = client()
    seen = Counter(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
    assert set(seen) == set(launched) and all(c == 1 for c in seen.values())
    states = {i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    for iid in terminated:
        assert states[iid]["State"]["Name"] in ("shutting-down", "terminated")
    for iid, value in tagged.items():
        tags = {t["Key"]: t["Value"] for t in states[iid].get("Tags", [])}
        assert tags.get("owner") == value
    live = [i for i in launched if i not in terminated]
    assert wait_for(lambda: all(i["State"]["Name"] == "running" for r in ec2.describe_instances(
        InstanceIds=live)["Reservations"] for i in r["Instances"]), 120) if live else True
    if launched:
        ec2.terminate_instances(InstanceIds=launched)
        assert wait_for(lambda: all(i["State"]["Name"] == "terminated" for r in ec2.describe_instances(
            InstanceIds=launched)["Reservations"] for i in r["Instances"]), 120)
