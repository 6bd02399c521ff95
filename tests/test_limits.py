"""Request limits: per-account throttling with AWS's RequestLimitExceeded."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from gureum.testing import Server


@pytest.fixture(scope="module")
def throttled_server():  # noqa: ANN201
    data_dir = Path(f"/var/tmp/gureum-test-limits-{secrets.token_hex(3)}")
    data_dir.mkdir(mode=0o755)
    srv = Server(data_dir)
    srv.env.update({"GUREUM_RATE_LIMIT": "5", "GUREUM_RATE_BURST": "5"})
    srv.start()
    yield srv
    srv.stop()
    assert not any(srv.host_objects().values())
    shutil.rmtree(data_dir, ignore_errors=True)


def test_throttling_per_account(throttled_server):
    ec2 = throttled_server.client()
    codes = []
    for _ in range(15):
        try:
            ec2.describe_regions()
            codes.append("ok")
        except ClientError as err:
            codes.append(err.response["Error"]["Code"])
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert codes[:5] == ["ok"] * 5
    assert "RequestLimitExceeded" in codes
    assert set(codes) <= {"ok", "RequestLimitExceeded"}


def test_sdk_retries_through_throttling(throttled_server):
    import boto3
    from botocore.config import Config

    access, secret = throttled_server.credentials()
    ec2 = boto3.client("ec2", endpoint_url=throttled_server.endpoint, region_name="gureum-1",
                       aws_access_key_id=access, aws_secret_access_key=secret,
                       config=Config(retries={"mode": "standard", "max_attempts": 10}))
    for _ in range(12):  # more than the burst: the SDK backs off and gets through
        assert ec2.describe_regions()["Regions"]
