"""The upgrade from a one-host SQLite install to PostgreSQL (issue #13): state built on
SQLite through the API, `gureum db copy` into an empty PostgreSQL database, the cloud
started again on it: every Describe answers the same, and the cloud carries on."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state
from gureum.testing_postgres import SELECTED, PostgresServer

# Run once, in the tier's PostgreSQL pass (make test), not again on SQLite.
pytestmark = pytest.mark.skipif(not SELECTED, reason="GUREUM_TEST_DATABASE=postgres runs these")
START = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)


def build_state(cloud: FastCloud) -> list[str]:
    """A bit of everything, through the API; returns the instances launched."""
    ec2, elb = cloud.client(), cloud.client("elbv2")
    cw, asg = cloud.client("cloudwatch"), cloud.client("autoscaling")
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    ec2.create_key_pair(KeyName="moved", KeyType="ed25519")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    launched = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2, KeyName="moved", SubnetId=subnet,
        SecurityGroupIds=[group], TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": "moved"}]}])["Instances"]]
    launched += [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1)["Instances"]]
    for instance_id in launched:
        wait_state(ec2, instance_id, "running")
    ec2.stop_instances(InstanceIds=launched[-1:])
    wait_state(ec2, launched[-1], "stopped")
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=address, InstanceId=launched[0])
    volume = ec2.create_volume(AvailabilityZone="gureum-1a", Size=2)["VolumeId"]
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"]
                    == "available", 10)
    ec2.create_tags(Resources=[vpc, subnet, volume], Tags=[{"Key": "team", "Value": "blue"}])
    template = ec2.create_launch_template(LaunchTemplateName="moved", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template, LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})
    target_group = elb.create_target_group(Name="moved", Protocol="HTTP", Port=80,
                                           VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="moved", Subnets=[subnet],
                                  SecurityGroups=[group])["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": target_group}])
    assert wait_for(lambda: elb.describe_load_balancers(LoadBalancerArns=[lb])[
        "LoadBalancers"][0]["State"]["Code"] == "active", 10)
    cw.put_metric_data(Namespace="Moved", MetricData=[
        {"MetricName": "Load", "Timestamp": START + dt.timedelta(minutes=m), "Value": float(m)}
        for m in range(30)])
    cw.put_metric_alarm(AlarmName="moved", Namespace="Moved", MetricName="Load",
                        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=5,
                        ComparisonOperator="GreaterThanThreshold", ActionsEnabled=False)
    asg.create_auto_scaling_group(AutoScalingGroupName="moved", MinSize=0, MaxSize=2,
                                  DesiredCapacity=0, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateId": template})
    return launched


def answers(cloud: FastCloud) -> dict[str, Any]:
    """What the API says about the state (ResponseMetadata aside)."""
    ec2, elb = cloud.client(), cloud.client("elbv2")
    cw, asg = cloud.client("cloudwatch"), cloud.client("autoscaling")
    calls = {
        "instances": ec2.describe_instances, "vpcs": ec2.describe_vpcs,
        "subnets": ec2.describe_subnets, "groups": ec2.describe_security_groups,
        "rules": ec2.describe_security_group_rules, "tables": ec2.describe_route_tables,
        "gateways": ec2.describe_internet_gateways, "addresses": ec2.describe_addresses,
        "keys": ec2.describe_key_pairs, "volumes": ec2.describe_volumes,
        "tags": ec2.describe_tags, "images": ec2.describe_images,
        "templates": ec2.describe_launch_templates,
        "versions": lambda: ec2.describe_launch_template_versions(LaunchTemplateName="moved"),
        "lbs": elb.describe_load_balancers, "target_groups": elb.describe_target_groups,
        "metrics": lambda: cw.list_metrics(Namespace="Moved"),  # AWS/EC2 grows meanwhile
        "statistics": lambda: cw.get_metric_statistics(
            Namespace="Moved", MetricName="Load", StartTime=START,
            EndTime=START + dt.timedelta(hours=1), Period=300, Statistics=["Average", "Sum"]),
        "alarms": lambda: [{k: v for k, v in a.items() if not k.startswith("State")}
                           for a in cw.describe_alarms()["MetricAlarms"]],
        "groups_asg": asg.describe_auto_scaling_groups,
    }
    out = {}
    for name, call in calls.items():
        answer = call()
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
        out[name] = answer
    return out


def gureum(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gureum.cli.main", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_a_sqlite_install_moves_to_postgres(postgres: PostgresServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUREUM_DATABASE_URL", raising=False)
    data = tmp_path / "host"
    on_sqlite = FastCloud(data)
    try:
        launched = build_state(on_sqlite)
        before = answers(on_sqlite)
    finally:
        on_sqlite.stop()

    target = postgres.create_database("moved")
    done = gureum("--data-dir", str(data), "db", "copy", "--to", target)
    assert done.returncode == 0, done.stderr
    assert "instances: 3" in done.stdout
    again = gureum("--data-dir", str(data), "db", "copy", "--to", target)
    assert again.returncode == 1 and "already holds state" in again.stderr
    migrated = gureum("db", "migrate", env={"GUREUM_DATABASE_URL": target})
    assert migrated.returncode == 0 and "schema at head" in migrated.stdout, migrated.stderr

    on_postgres = FastCloud(data, target)
    try:
        # The SQLite install's account and credentials, found again.
        assert on_postgres.running.access_key == on_sqlite.running.access_key
        ec2 = on_postgres.client()
        after = answers(on_postgres)
        for name in before:
            assert after[name] == before[name], name
        # And it carries on: new rows take fresh keys (sequences moved past the copied).
        on_postgres.client("cloudwatch").put_metric_data(Namespace="Moved", MetricData=[
            {"MetricName": "Load", "Timestamp": START + dt.timedelta(minutes=45), "Value": 1.0}])
        new = ec2.run_instances(ImageId=before["images"]["Images"][0]["ImageId"], MinCount=1,
                                MaxCount=1)["Instances"][0]["InstanceId"]
        wait_state(ec2, new, "running")
        ec2.start_instances(InstanceIds=launched[-1:])
        wait_state(ec2, launched[-1], "running")
    finally:
        on_postgres.stop()
