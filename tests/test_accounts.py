"""Accounts: resources belong to the signing account; others cannot see or touch them."""

from __future__ import annotations

import json
import subprocess

import pytest
from botocore.exceptions import ClientError
from helpers import VENV_BIN


def test_second_account_cannot_see_or_touch(server, ec2, launch):
    out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir),
                          "account", "create", "tenant-b"], capture_output=True, text=True,
                         check=True).stdout
    creds = json.loads(out)
    other = server.client(access=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    mine = launch()["Instances"][0]["InstanceId"]
    assert other.describe_instances()["Reservations"] == []
    for call in (lambda: other.describe_instances(InstanceIds=[mine]),
                 lambda: other.terminate_instances(InstanceIds=[mine]),
                 lambda: other.stop_instances(InstanceIds=[mine]),
                 lambda: other.create_tags(Resources=[mine], Tags=[{"Key": "x", "Value": "y"}])):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    # Key pair names are per account.
    other.create_key_pair(KeyName="shared-name")
    ec2.create_key_pair(KeyName="shared-name")
    assert [k["KeyName"] for k in other.describe_key_pairs()["KeyPairs"]] == ["shared-name"]
    ec2.delete_key_pair(KeyName="shared-name")
    other.delete_key_pair(KeyName="shared-name")
    assert ec2.describe_instances(InstanceIds=[mine])["Reservations"]
