"""`gureum account list|delete` and `gureum host usage` against the in-process cloud:
deleting an account removes everything it owns through the API (every kind of resource,
with its dependencies), then its rows and keys; other accounts are untouched."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import func, select

from gureum.admin import inventory, teardown
from gureum.cli.main import main
from gureum.console.testing import ConsoleClient
from gureum.errors import OperatorError
from gureum.services.ec2 import networks
from gureum.store import models
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state

CLOUD_CA_ARN = "arn:aws:acm-pca:gureum-1:000000000001:certificate-authority/gureum"


def populate(fast: FastCloud, name: str, image_id: str) -> tuple[str, dict[str, str]]:
    """An account holding one of every kind of resource, tangled as users tangle them."""
    account_id, access, secret = fast.cloud.create_account(name)

    def client(service: str):  # noqa: ANN202
        return fast.client(service, access=access, secret=secret)

    ec2, elb = client("ec2"), client("elbv2")
    ec2.create_key_pair(KeyName="k")
    web = ec2.create_security_group(GroupName="web", Description="w")["GroupId"]
    app = ec2.create_security_group(GroupName="app", Description="a")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=app, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
        "UserIdGroupPairs": [{"GroupId": web}]}])
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    own_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=own_subnet)
    ec2.create_internet_gateway()  # a detached one too
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"][0]
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, KeyName="k",
                             SecurityGroupIds=[web], DisableApiTermination=True)[
        "Instances"][0]["InstanceId"]
    wait_state(ec2, inst, "running")
    volume = ec2.create_volume(AvailabilityZone=subnet["AvailabilityZone"], Size=1)["VolumeId"]
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"]
                    == "available", 10)
    ec2.attach_volume(VolumeId=volume, InstanceId=inst, Device="/dev/sdf")
    ec2.create_snapshot(VolumeId=volume)
    ec2.create_image(InstanceId=inst, Name="doomed-image", NoReboot=True)
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=inst)
    # Interfaces: one attached to the instance (kept after it), one in the account's VPC.
    kept = ec2.create_network_interface(SubnetId=subnet["SubnetId"], Groups=[web])[
        "NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=kept, InstanceId=inst, DeviceIndex=1)
    ec2.create_network_interface(SubnetId=own_subnet)
    # A NAT gateway holding an Elastic IP, routed to; a secondary CIDR block.
    nat_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=own_subnet, AllocationId=nat_eip)["NatGateway"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="198.51.100.0/24",
                     NatGatewayId=nat["NatGatewayId"])
    ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.78.0.0/16")
    group = elb.create_target_group(Name="tg", Protocol="HTTP", Port=80,
                                    VpcId=subnet["VpcId"])["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": inst}])
    lb = elb.create_load_balancer(Name="lb", Subnets=[subnet["SubnetId"]],
                                  SecurityGroups=[web])["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": group}])
    template = ec2.create_launch_template(LaunchTemplateName="doomed-lt", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="doomed-asg", MinSize=1, MaxSize=2, DesiredCapacity=1,
        VPCZoneIdentifier=subnet["SubnetId"], LaunchTemplate={"LaunchTemplateId": template},
        TargetGroupARNs=[group])
    client("cloudwatch").put_metric_alarm(
        AlarmName="cpu", Namespace="AWS/EC2", MetricName="CPUUtilization",
        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=90.0,
        ComparisonOperator="GreaterThanThreshold")
    client("acm").request_certificate(DomainName="api.example.com",
                                      CertificateAuthorityArn=CLOUD_CA_ARN)
    return account_id, {"access": access, "secret": secret, "instance": inst, "vpc": vpc}


def rows_of(fast: FastCloud, account_id: str) -> dict[str, int]:
    """Rows with the account's id, per table (every table that has the column)."""
    found: dict[str, int] = {}
    with fast.cloud.store.read() as s:
        for table in models.Base.metadata.sorted_tables:
            if "account_id" in table.c:
                n = s.scalar(select(func.count()).select_from(table).where(
                    table.c.account_id == account_id)) or 0
                if n:
                    found[table.name] = n
    return found


def test_deleting_an_account_removes_everything_it_owns_and_nothing_else(
        fast: FastCloud, ec2, image_id: str) -> None:  # noqa: ANN001
    bystander_id, _, _ = fast.cloud.create_account("bystander")
    bystander = fast.new_account("bystander-2")
    theirs = bystander.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    account_id, made = populate(fast, "doomed", image_id)
    browser = ConsoleClient(fast.port)
    browser.sign_in_link(fast.running.server.console.sign_in_url(account_id))
    assert browser.get("/console/instances").status == 200
    def summarized() -> inventory.AccountSummary:
        return {a.account_id: a for a in inventory.accounts(fast.cloud)}[account_id]

    # The group's instance is launched by the Auto Scaling controller, soon after.
    assert wait_for(lambda: summarized().instances == 2, 15)
    summary = summarized()
    assert (summary.name, summary.instances, summary.load_balancers,
            summary.auto_scaling_groups) == ("doomed", 2, 1, 1)
    assert summary.volumes >= 1 and made["access"] in summary.access_key_ids
    assert networks.default_vpc_id(account_id) in fast.agent.vpc_routers()
    steps: list[str] = []
    removed = teardown.delete_account(fast.cloud, "doomed", say=steps.append, wait_seconds=60)
    assert removed[-1] == f"account {account_id}"
    for kind in ("Auto Scaling group doomed-asg", f"instance {made['instance']}", "load balancer lb",
                 "target group tg", "alarm cpu", "key pair k", f"VPC {made['vpc']}"):
        assert kind in removed, (kind, removed)
    assert any(r.startswith("Elastic IP") for r in removed)
    assert any(r.startswith("snapshot") for r in removed)
    assert any(r.startswith("image") for r in removed)
    assert any(r.startswith("certificate") for r in removed)
    assert any(s.startswith("waiting for") for s in steps)
    # A deregistered image's row outlives the account until the EBS controller has
    # removed its root (no foreign key holds it); nothing else is left at all.
    assert set(rows_of(fast, account_id)) <= {"images"}
    assert wait_for(lambda: rows_of(fast, account_id) == {}, 10), rows_of(fast, account_id)
    with fast.cloud.store.read() as s:
        assert s.get(models.Account, account_id) is None
    # Its keys stop working at once; the host holds nothing of it.
    gone = fast.client(access=made["access"], secret=made["secret"])
    with pytest.raises(ClientError) as err:
        gone.describe_instances()
    assert err.value.response["Error"]["Code"] == "AuthFailure"
    assert made["instance"] not in fast.agent.instances()
    default_vpc = networks.default_vpc_id(account_id)  # purged, not deleted by the API
    assert wait_for(lambda: not {made["vpc"], default_vpc} & set(fast.agent.vpc_routers()), 10)
    # A console session of the account ends with it.
    answer = browser.get("/console/instances")
    assert answer.status == 303 and "/console/signin" in answer.headers["location"]
    # Other accounts keep everything.
    assert wait_for(lambda: bystander.describe_instances(InstanceIds=[theirs])[
        "Reservations"][0]["Instances"][0]["State"]["Name"] == "running", 10)
    assert bystander_id in {a.account_id for a in inventory.accounts(fast.cloud)}
    assert ec2.describe_key_pairs()  # the operator's own account still answers


def test_the_operators_account_and_unknown_ones_are_refused(fast: FastCloud) -> None:
    with pytest.raises(OperatorError, match="cannot be deleted"):
        teardown.delete_account(fast.cloud, "default")
    with pytest.raises(OperatorError, match="cannot be deleted"):
        teardown.delete_account(fast.cloud, fast.running.account_id)
    with pytest.raises(OperatorError, match="no account 'nobody'"):
        teardown.delete_account(fast.cloud, "nobody")


def test_the_cli_lists_accounts_shows_usage_and_deletes_with_yes_only(
        fast: FastCloud, image_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, access, secret = fast.cloud.create_account("cli-doomed")
    ec2 = fast.client(access=access, secret=secret)
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                             InstanceType="t3.small")["Instances"][0]["InstanceId"]
    wait_state(ec2, inst, "running")
    base = ["--data-dir", str(fast.data_dir)]
    assert main([*base, "account", "list", "--json"]) == 0
    listed = {a["name"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["cli-doomed"]["instances"] == 1 and listed["cli-doomed"]["access_key_ids"] == [access]
    assert main([*base, "host", "usage", "--json"]) == 0
    hosts = json.loads(capsys.readouterr().out)
    control = hosts[0]  # the control host first; the instance runs there
    assert control["host_id"] == fast.cloud.control_host_id
    mine = [i for i in control["instances"] if i["instance_id"] == inst]
    assert mine and (mine[0]["account_name"], mine[0]["vcpus"], mine[0]["memory_mib"]) == (
        "cli-doomed", 2, 2048)
    assert control["vcpus_in_use"] >= 2 and control["vcpus"] == fast.config.host_vcpus
    assert main([*base, "host", "usage"]) == 0
    assert "usage against capacity" in capsys.readouterr().out
    assert main([*base, "account", "delete", "cli-doomed"]) == 1
    assert "--yes" in capsys.readouterr().err
    assert main([*base, "account", "delete", "default", "--yes"]) == 1
    assert "cannot be deleted" in capsys.readouterr().err
    assert main([*base, "account", "delete", "cli-doomed", "--yes",
                 "--port", str(fast.port)]) == 0
    assert f"instance {inst}" in capsys.readouterr().out
    assert main([*base, "account", "list"]) == 0
    assert "cli-doomed" not in capsys.readouterr().out
