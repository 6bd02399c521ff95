"""The quick start, exactly as a user types it, with the real AWS CLI and OpenSSH."""

from __future__ import annotations

import json

from helpers import ssh, wait_for, wait_state


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


def test_public_subnet_pattern_with_aws_cli(server, ec2, image_id, key_pair):
    """The usual VPC walkthrough, command by command, then torn down in AWS's order."""

    def aws(*args: str) -> dict:
        out = server.aws("ec2", *args).stdout
        return json.loads(out) if out.strip() else {}

    vpc = aws("create-vpc", "--cidr-block", "10.88.0.0/16")["Vpc"]["VpcId"]
    subnet = aws("create-subnet", "--vpc-id", vpc, "--cidr-block", "10.88.1.0/24")["Subnet"]["SubnetId"]
    igw = aws("create-internet-gateway")["InternetGateway"]["InternetGatewayId"]
    aws("attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc)
    table = aws("create-route-table", "--vpc-id", vpc)["RouteTable"]["RouteTableId"]
    aws("create-route", "--route-table-id", table, "--destination-cidr-block", "0.0.0.0/0",
        "--gateway-id", igw)
    assoc = aws("associate-route-table", "--route-table-id", table, "--subnet-id", subnet)[
        "AssociationId"]
    aws("modify-subnet-attribute", "--subnet-id", subnet, "--map-public-ip-on-launch")
    described = aws("describe-route-tables", "--filters", f"Name=association.subnet-id,Values={subnet}")
    assert [t["RouteTableId"] for t in described["RouteTables"]] == [table]
    group = aws("create-security-group", "--group-name", "ssh", "--description", "ssh",
                "--vpc-id", vpc)["GroupId"]
    aws("authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp",
        "--port", "22", "--cidr", "0.0.0.0/0")
    iid = aws("run-instances", "--image-id", image_id, "--key-name", key_pair[0],
              "--subnet-id", subnet, "--security-group-ids", group)["Instances"][0]["InstanceId"]
    running = wait_state(ec2, iid, "running")
    assert running["PrivateIpAddress"].startswith("10.88.1.")
    assert ssh(key_pair[1], running["PublicIpAddress"], "hostname").stdout.strip() \
        == "ip-" + running["PrivateIpAddress"].replace(".", "-")
    blocked = server.aws("ec2", "delete-vpc", "--vpc-id", vpc, check=False)
    assert blocked.returncode != 0 and "DependencyViolation" in blocked.stderr
    aws("terminate-instances", "--instance-ids", iid)
    wait_state(ec2, iid, "terminated")
    aws("delete-security-group", "--group-id", group)
    aws("disassociate-route-table", "--association-id", assoc)
    aws("delete-route-table", "--route-table-id", table)
    aws("detach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc)
    aws("delete-internet-gateway", "--internet-gateway-id", igw)
    aws("delete-subnet", "--subnet-id", subnet)
    aws("delete-vpc", "--vpc-id", vpc)
    gone = server.aws("ec2", "describe-vpcs", "--vpc-ids", vpc, check=False)
    assert "InvalidVpcID.NotFound" in gone.stderr


def test_load_balancer_and_certificate_with_aws_cli(server, ec2):
    """The README's load balancer commands (aws elbv2, aws acm), errors included."""
    from gureum.testing_certs import self_signed

    def aws(service: str, *args: str) -> dict:
        out = server.aws(service, *args).stdout
        return json.loads(out) if out.strip() else {}

    subnet = ec2.describe_subnets()["Subnets"][0]
    cert, key = self_signed("cli.example")
    (server.data_dir / "cli-cert.pem").write_bytes(cert)
    (server.data_dir / "cli-key.pem").write_bytes(key)
    arn = aws("acm", "import-certificate", "--certificate", f"fileb://{server.data_dir}/cli-cert.pem",
              "--private-key", f"fileb://{server.data_dir}/cli-key.pem")["CertificateArn"]
    assert aws("acm", "describe-certificate", "--certificate-arn", arn)["Certificate"][
        "DomainName"] == "cli.example"
    tg = aws("elbv2", "create-target-group", "--name", "cli-tg", "--protocol", "HTTP", "--port",
             "8080", "--vpc-id", subnet["VpcId"], "--health-check-interval-seconds", "10")[
        "TargetGroups"][0]["TargetGroupArn"]
    lb = aws("elbv2", "create-load-balancer", "--name", "cli-lb", "--subnets",
             subnet["SubnetId"])["LoadBalancers"][0]["LoadBalancerArn"]
    try:
        aws("elbv2", "create-listener", "--load-balancer-arn", lb, "--protocol", "HTTPS",
            "--port", "443", "--certificates", f"CertificateArn={arn}",
            "--default-actions", f"Type=forward,TargetGroupArn={tg}")
        listeners = aws("elbv2", "describe-listeners", "--load-balancer-arn", lb)["Listeners"]
        assert [(x["Protocol"], x["Port"]) for x in listeners] == [("HTTPS", 443)]
        dup = server.aws("elbv2", "create-load-balancer", "--name", "cli-lb", "--subnets",
                         subnet["SubnetId"], check=False)
        assert dup.returncode != 0 and "DuplicateLoadBalancerName" in dup.stderr
        in_use = server.aws("acm", "delete-certificate", "--certificate-arn", arn, check=False)
        assert in_use.returncode != 0 and "ResourceInUseException" in in_use.stderr
    finally:
        aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb)
        aws("elbv2", "delete-target-group", "--target-group-arn", tg)
    aws("acm", "delete-certificate", "--certificate-arn", arn)
    gone = server.aws("elbv2", "describe-load-balancers", "--names", "cli-lb", check=False)
    assert "LoadBalancerNotFound" in gone.stderr


def test_auto_scaling_with_aws_cli(server, ec2, image_id):
    """The README's Auto Scaling commands through `aws autoscaling`, errors included."""

    def aws(service: str, *args: str) -> dict:
        out = server.aws(service, *args).stdout
        return json.loads(out) if out.strip() else {}

    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lt = aws("ec2", "create-launch-template", "--launch-template-name", "cli-asg",
             "--launch-template-data", json.dumps({"ImageId": image_id, "InstanceType": "t3.nano"}))[
        "LaunchTemplate"]["LaunchTemplateId"]
    aws("autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", "cli-asg",
        "--launch-template", f"LaunchTemplateId={lt},Version=$Latest", "--min-size", "0",
        "--max-size", "2", "--desired-capacity", "1", "--vpc-zone-identifier", subnet)
    try:
        out = aws("autoscaling", "put-scaling-policy", "--auto-scaling-group-name", "cli-asg",
                  "--policy-name", "cpu50", "--policy-type", "TargetTrackingScaling",
                  "--target-tracking-configuration", json.dumps({
                      "TargetValue": 50, "PredefinedMetricSpecification": {
                          "PredefinedMetricType": "ASGAverageCPUUtilization"}}))
        assert len(out["Alarms"]) == 2

        def in_service() -> list[dict]:
            groups = aws("autoscaling", "describe-auto-scaling-groups",
                         "--auto-scaling-group-names", "cli-asg")["AutoScalingGroups"]
            return [i for i in groups[0]["Instances"] if i["LifecycleState"] == "InService"]

        assert wait_for(lambda: len(in_service()) == 1, 60)
        activities = aws("autoscaling", "describe-scaling-activities",
                         "--auto-scaling-group-name", "cli-asg")["Activities"]
        assert activities[0]["StatusCode"] == "Successful"
        bad = server.aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name",
                         "cli-asg", "--desired-capacity", "5", check=False)
        assert bad.returncode != 0 and "ValidationError" in bad.stderr
        busy = server.aws("autoscaling", "delete-auto-scaling-group",
                          "--auto-scaling-group-name", "cli-asg", check=False)
        assert busy.returncode != 0 and "ResourceInUse" in busy.stderr
    finally:
        aws("autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", "cli-asg",
            "--force-delete")
    assert wait_for(lambda: not aws("autoscaling", "describe-auto-scaling-groups",
                                    "--auto-scaling-group-names", "cli-asg")["AutoScalingGroups"], 60)
    aws("ec2", "delete-launch-template", "--launch-template-id", lt)


def test_caller_identity_with_aws_cli(server):
    """`aws sts get-caller-identity`, the first call of many tools and scripts."""
    who = json.loads(server.aws("sts", "get-caller-identity").stdout)
    assert who["Arn"] == f"arn:aws:iam::{who['Account']}:root" and len(who["Account"]) == 12
