"""The API beyond loopback, for real: `gureum up` listening on an address of a veth this
test makes (the host side of a link to a "laptop" netns, RFC 2544's 198.18.0.0/15, never
the host's own network) serves HTTPS only. From the laptop the AWS CLI, configured by the
profile `gureum up` wrote (endpoint https://..., ca_bundle = the cloud's CA), lists and
creates over TLS it verifies; plain HTTP gets only a pointer to https. Then `gureum
account delete` (over the same HTTPS) removes a tenant with a real instance, an attached
volume and its snapshot, files included."""

from __future__ import annotations

import configparser
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from helpers import VENV_BIN, Laptop, proven_clean, sh, wait_for, wait_state

from gureum.cloud import KEY_CACHE_SECONDS
from gureum.config import Config
from gureum.testing import Server

LINK = "198.18.77.0/30"
HOST_SIDE, LAPTOP = "198.18.77.1", "198.18.77.2"


@pytest.fixture(scope="module")
def lan() -> Iterator[tuple[Server, Laptop]]:
    data_dir = Path(f"/var/tmp/gureum-test-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    server = Server(data_dir, host=HOST_SIDE)
    # The machine's AWS_CA_BUNDLE would win over the profile's ca_bundle in botocore.
    server.env.pop("AWS_CA_BUNDLE", None)
    prefix = Config(data_dir=data_dir).prefix
    laptop = Laptop(f"{prefix}-tls", f"{prefix}t0", HOST_SIDE, LAPTOP, 30, claims=(LINK,))
    try:
        server.start()
    except BaseException:
        laptop.remove()
        raise
    yield server, laptop
    proven_clean(server, then=laptop.remove)


def test_the_aws_cli_on_another_machine_verifies_the_api_over_https(lan) -> None:  # noqa: ANN001
    server, laptop = lan
    profile = configparser.ConfigParser()
    profile.read(server.data_dir / "aws-config")
    section = profile["profile gureum"]
    assert section["endpoint_url"] == f"https://{HOST_SIDE}:{server.port}"
    assert section["ca_bundle"] == server.ca_bundle
    aws = [str(VENV_BIN / "aws"), "--profile", "gureum"]
    listed = laptop.run(*aws, "ec2", "describe-instances", env=server.env)
    assert json.loads(listed.stdout)["Reservations"] == []
    made = laptop.run(*aws, "ec2", "create-key-pair", "--key-name", "lan",
                      "--key-type", "ed25519", "--query", "KeyMaterial", "--output", "text",
                      env=server.env)
    assert made.stdout.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    # Without the CA the handshake fails; in clear text there is no API, only a pointer.
    no_profile_config = {**server.env, "AWS_CONFIG_FILE": "/dev/null"}  # keys only
    refused = laptop.run(*aws, "ec2", "describe-key-pairs", "--endpoint-url",
                         server.endpoint, "--region", "gureum-1", check=False,
                         env=no_profile_config)
    assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    plain = laptop.run("curl", "-s", "--max-time", "5", "-X", "POST", "--data",
                       "Action=DescribeKeyPairs", f"http://{HOST_SIDE}:{server.port}/",
                       check=False)
    assert "HTTPS only" in plain.stdout and "<" not in plain.stdout
    ping = laptop.run("curl", "-s", "--max-time", "5", "--cacert", server.ca_bundle or "",
                      f"https://{HOST_SIDE}:{server.port}/ping")
    assert json.loads(ping.stdout) == {"status": "ok"}


def test_account_delete_over_https_removes_a_tenant_and_its_instance(
        lan) -> None:  # noqa: ANN001
    server, _ = lan
    gureum = [str(VENV_BIN / "gureum")]
    creds = json.loads(sh(*gureum, "account", "create", "lan-tenant", env=server.env).stdout)
    tenant = server.client(access=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    image = tenant.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    iid = tenant.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                               InstanceType="t3.nano")["Instances"][0]["InstanceId"]
    wait_state(tenant, iid, "running")
    zone = tenant.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "Placement"]["AvailabilityZone"]
    vol = tenant.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    assert wait_for(lambda: tenant.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"]
                    == "available", 60)
    tenant.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    snap = tenant.create_snapshot(VolumeId=vol)["SnapshotId"]
    store = server.data_dir / "volumes"
    assert wait_for(lambda: (store / f"{vol}.img").exists() and (store / f"{snap}.img").exists(),
                    60)
    hosts = json.loads(sh(*gureum, "host", "usage", "--json", env=server.env).stdout)
    assert [i["account_name"] for h in hosts for i in h["instances"]
            if i["instance_id"] == iid] == ["lan-tenant"]
    out = sh(*gureum, "account", "delete", "lan-tenant", "--yes", env=server.env)
    assert f"instance {iid}" in out.stdout and f"volume {vol}" in out.stdout
    # The files went before the rows: nothing of the tenant is left in the volume store.
    assert not (store / f"{vol}.img").exists() and not (store / f"{snap}.img").exists()
    listed = json.loads(sh(*gureum, "account", "list", "--json", env=server.env).stdout)
    assert "lan-tenant" not in {a["name"] for a in listed}

    def refused() -> bool:  # the running server stops trusting its cached key
        try:
            tenant.describe_instances()
        except ClientError as err:
            return err.response["Error"]["Code"] == "AuthFailure"
        return False

    started = time.monotonic()
    assert wait_for(refused, 10)
    assert time.monotonic() - started < KEY_CACHE_SECONDS + 1
    # The host let go of the instance: no object of the data directory names it.
    assert wait_for(lambda: not any(iid in o for objs in server.host_objects().values()
                                    for o in objs), 30), server.host_objects()
