"""One real gureum server per test session: its own data dir, port, prefix and address
ranges; a final check that the prefix left nothing behind on the host."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o", "BatchMode=yes"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `gureum up` subprocess; restartable on the same data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        octet = 100 + secrets.randbelow(100)
        self.env = {
            **os.environ,
            "GUREUM_DATA_DIR": str(data_dir),
            "GUREUM_PORT": str(self.port),
            "GUREUM_PUBLIC_POOL": f"127.{octet}.0.0/16",
            # Not AWS's 172.31/16, so a developer's own `make up` can run beside the tests.
            "GUREUM_VPC_CIDR": "172.30.0.0/16",
            "GUREUM_SUBNET_CIDR": "172.30.0.0/20",
            "GUREUM_UID_BASE": str(0x5000_0000 + secrets.randbelow(64) * 0x100_0000),
            "GUREUM_MAX_INSTANCES": "64",
            "AWS_CONFIG_FILE": str(data_dir / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(data_dir / "aws-credentials"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        log = open(self.data_dir / "server.out", "ab")
        self.proc = subprocess.Popen([str(VENV_BIN / "gureum"), "up"], env={**self.env, **(extra_env or {})},
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        deadline = time.monotonic() + 300  # the first run on a machine builds the image
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gureum up exited: {(self.data_dir / 'server.out').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gureum up did not start listening")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def host_objects(self) -> dict[str, list[str]]:
        import json

        out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(self.data_dir), "doctor"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)["objects"]

    def credentials(self, profile: str = "gureum") -> tuple[str, str]:
        import configparser

        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "aws-credentials")
        return parser[profile]["aws_access_key_id"], parser[profile]["aws_secret_access_key"]

    def client(self, service: str = "ec2", access: str | None = None, secret: str | None = None):  # noqa: ANN201
        if access is None:
            access, secret = self.credentials()
        return boto3.client(service, endpoint_url=self.endpoint, region_name="gureum-1",
                            aws_access_key_id=access, aws_secret_access_key=secret,
                            config=BotoConfig(retries={"max_attempts": 0}))

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "aws"), "--profile", "gureum", *args],
                              env=self.env, capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    data_dir = Path(f"/var/tmp/gureum-test-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    srv = Server(data_dir)
    srv.start()
    yield srv
    try:
        ec2 = srv.client()
        live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        if live:
            ec2.terminate_instances(InstanceIds=live)
            wait_for(lambda: all(i["State"]["Name"] == "terminated" for r in
                                 ec2.describe_instances(InstanceIds=live)["Reservations"]
                                 for i in r["Instances"]), 60)
    finally:
        srv.stop()
    leftovers = {k: v for k, v in srv.host_objects().items() if v}
    if not leftovers:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert not leftovers, f"host objects leaked: {leftovers}"


@pytest.fixture(scope="session")
def ec2(server: Server):  # noqa: ANN201
    return server.client()


@pytest.fixture(scope="session")
def image_id(ec2) -> str:  # noqa: ANN001
    return ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]


@pytest.fixture(scope="session")
def key_pair(ec2, server: Server) -> tuple[str, Path]:  # noqa: ANN001
    name = "test-key-" + secrets.token_hex(3)
    material = ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyMaterial"]
    path = server.data_dir / f"{name}.pem"
    path.write_text(material)
    path.chmod(0o600)
    return name, path


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def instance(ec2, instance_id: str) -> dict:  # noqa: ANN001
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def wait_state(ec2, instance_id: str, state: str, timeout: float = 60) -> dict:  # noqa: ANN001
    assert wait_for(lambda: instance(ec2, instance_id)["State"]["Name"] == state, timeout), (
        f"{instance_id} is {instance(ec2, instance_id)['State']['Name']}, wanted {state}")
    return instance(ec2, instance_id)


def ssh(key: Path, address: str, command: str, timeout: float = 30,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{address}", command],
                          capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture
def launch(ec2, image_id, key_pair):  # noqa: ANN001, ANN201
    """Launch instances and terminate them after the test."""
    launched: list[str] = []

    def _launch(**kwargs) -> dict:  # noqa: ANN003
        params = {"ImageId": image_id, "InstanceType": "t3.micro", "MinCount": 1, "MaxCount": 1,
                  "KeyName": key_pair[0], **kwargs}
        res = ec2.run_instances(**params)
        launched.extend(i["InstanceId"] for i in res["Instances"])
        return res

    yield _launch
    if launched:
        ec2.terminate_instances(InstanceIds=launched)
        for instance_id in launched:
            wait_state(ec2, instance_id, "terminated")
