"""One real gureum server per test session: its own data dir, port, prefix and address
ranges; a final check that the prefix left nothing behind on the host."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import proven_clean, wait_state

from gureum.testing import Server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    data_dir = Path(f"/var/tmp/gureum-test-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    srv = Server(data_dir)
    srv.start()
    yield srv
    proven_clean(srv)


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
