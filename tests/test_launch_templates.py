"""A real instance from a launch template: its user data ran, its key lets us in."""

from __future__ import annotations

import base64
import json

from helpers import ssh, wait_state


def test_instance_from_a_template_boots_with_its_settings(server, ec2, image_id, key_pair):
    script = base64.b64encode(b"#!/bin/sh\necho made-by-template > /tmp/origin\n").decode()
    data = {"ImageId": image_id, "InstanceType": "t3.nano", "KeyName": key_pair[0],
            "UserData": script}
    made = json.loads(server.aws("ec2", "create-launch-template", "--launch-template-name",
                                 "t-real", "--launch-template-data", json.dumps(data)).stdout)
    lt = made["LaunchTemplate"]["LaunchTemplateId"]
    try:
        iid = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={
            "LaunchTemplateId": lt, "Version": "$Latest"})["Instances"][0]["InstanceId"]
        inst = wait_state(ec2, iid, "running")
        out = ssh(key_pair[1], inst["PublicIpAddress"],
                  "for i in $(seq 50); do [ -f /tmp/origin ] && break; sleep 0.1; done; "
                  "cat /tmp/origin").stdout.strip()
        assert out == "made-by-template"
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
    finally:
        server.aws("ec2", "delete-launch-template", "--launch-template-id", lt)
