"""The quick start, exactly as a user types it, with the real AWS CLI and OpenSSH."""

from __future__ import annotations

import json

from conftest import ssh, wait_state


def test_quick_start_with_aws_cli(server, ec2, image_id):
    pem = server.data_dir / "cli-me.pem"
    out = server.aws("ec2", "create-key-pair", "--key-name", "cli-me", "--query", "KeyMaterial",
                     "--output", "text").stdout
    pem.write_text(out)
    pem.chmod(0o600)
    res = json.loads(server.aws("ec2", "run-instances", "--image-id", image_id, "--instance-type",
                                "t3.micro", "--key-name", "cli-me").stdout)
    iid = res["Instances"][0]["InstanceId"]
    try:
        running = wait_state(ec2, iid, "running")
        assert ssh(pem, running["PublicIpAddress"], "uname -s").stdout.strip() == "Linux"
        described = json.loads(server.aws("ec2", "describe-instances", "--instance-ids", iid).stdout)
        assert described["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
        bad = server.aws("ec2", "describe-instances", "--instance-ids", "i-0000000000000000f", check=False)
        assert bad.returncode != 0 and "InvalidInstanceID.NotFound" in bad.stderr
    finally:
        server.aws("ec2", "terminate-instances", "--instance-ids", iid)
        wait_state(ec2, iid, "terminated")
        server.aws("ec2", "delete-key-pair", "--key-name", "cli-me")
