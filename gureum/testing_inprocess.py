"""The control plane in this process against the in-memory FakeAgent: the fast test
tier's cloud (API, handlers, store, controllers; no root, no kernel objects, no image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from gureum.agent.fake import FakeAgent
from gureum.api.tls import client_verify
from gureum.cli.up import RunningCloud, start_cloud
from gureum.config import Config
from gureum.testing import free_port, wait_for


class FastCloud:
    def __init__(self, data_dir: Path, database_url: str = "", **settings: Any) -> None:
        """`database_url` empty: SQLite in `data_dir`; else that database (PostgreSQL).
        `settings`: other Config fields (e.g. api_tls="1")."""
        self.agent = FakeAgent()
        defaults: dict[str, Any] = {
            "port": free_port(), "image_cache": data_dir / "images", "rate_limit": 0,
            "max_instances_per_account": 64, "dns_listen": f"127.0.0.1:{free_port()}",
            "metrics_interval": 1.0}
        self.config = Config(data_dir=data_dir, database_url=database_url,
                             **{**defaults, **settings})
        self.running: RunningCloud = start_cloud(self.config, agent=self.agent)
        self.cloud = self.running.cloud
        self.data_dir = data_dir

    # The same surface as gureum.testing.Server, so API-only tests run on either tier.
    @property
    def port(self) -> int:
        return self.config.port

    def credentials(self, profile: str = "gureum") -> tuple[str, str]:
        return self.running.access_key, self.running.secret_key

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    def client(self, service: str = "ec2", access: str | None = None,
               secret: str | None = None):  # noqa: ANN201
        return boto3.client(service, endpoint_url=self.endpoint, region_name="gureum-1",
                            verify=client_verify(self.config),
                            aws_access_key_id=access or self.running.access_key,
                            aws_secret_access_key=secret or self.running.secret_key,
                            config=BotoConfig(retries={"max_attempts": 0}))

    def new_account(self, name: str):  # noqa: ANN201
        _, access, secret = self.cloud.create_account(name)
        return self.client(access=access, secret=secret)

    def stop(self) -> None:
        self.running.shutdown()


def state_of(ec2, instance_id: str) -> str:  # noqa: ANN001
    res = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return res[0]["Instances"][0]["State"]["Name"]


def wait_state(ec2, instance_id: str, state: str, timeout: float = 10) -> None:  # noqa: ANN001
    assert wait_for(lambda: state_of(ec2, instance_id) == state, timeout), (
        f"{instance_id} is {state_of(ec2, instance_id)}, wanted {state}")


def empty_vpc(ec2, vpc_id: str) -> None:  # noqa: ANN001
    """A test VPC's instances terminated (waited for) and its interfaces detached and
    deleted: what is left (subnets, tables, groups) then deletes."""
    def interfaces() -> list[dict]:
        return ec2.describe_network_interfaces(Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}])["NetworkInterfaces"]

    for eni in interfaces():
        if eni.get("Attachment", {}).get("DeviceIndex", 0) > 0:
            ec2.detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"])
    instances = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}])["Reservations"] for i in r["Instances"]
        if i["State"]["Name"] != "terminated"]
    if instances:
        ec2.terminate_instances(InstanceIds=instances)
        for instance_id in instances:
            wait_state(ec2, instance_id, "terminated")
    for eni in interfaces():
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])


def serve_forever(data_dir: Path, database_url: str) -> None:
    """A FastCloud as its own process, for tests that kill a control plane: prints
    `READY <port> <access> <secret>`, then `LEADER` or `FOLLOWER` whenever that changes,
    and runs until killed."""
    import sys
    import time

    cloud = FastCloud(data_dir, database_url)
    running = cloud.running
    print(f"READY {cloud.port} {running.access_key} {running.secret_key}", flush=True)
    leading: bool | None = None
    while True:
        if running.leadership.leading != leading:
            leading = running.leadership.leading
            print("LEADER" if leading else "FOLLOWER", flush=True)
        sys.stdout.flush()
        time.sleep(0.02)


if __name__ == "__main__":
    import sys

    serve_forever(Path(sys.argv[1]), sys.argv[2])
