"""Host loss, for real (issue #13): the joined host of tests/test_hosts_join.py (a netns
on a veth, its own `gureum agent --join`) dies: its agent is killed and its link cut. It
is lost after 10 s without heartbeats; its instance reports an impaired system status;
the Auto Scaling group behind a load balancer replaces it on the control host (the lost
host's zone has no capacity left) and the replacement serves through the load balancer.
The host comes back: what the store ended there meanwhile is swept at once."""

from __future__ import annotations

import base64
import time

from helpers import WEB, get, sh, wait_for, wait_state
from test_hosts_join import Cluster
from test_hosts_join import cluster as cluster  # noqa: PLC0414  (the module's own cluster)

from gureum.config import Config


def test_a_lost_hosts_group_member_is_replaced_and_serves_behind_the_load_balancer(
        cluster: Cluster) -> None:
    server = cluster.server
    ec2, elb, asg = server.client(), server.client("elbv2"), server.client("autoscaling")
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnet_a = ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
        {"Name": "availability-zone", "Values": ["gureum-1a"]}])["Subnets"][0]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc["VpcId"],
                                 CidrBlock=vpc["CidrBlock"].replace(".0.0/16", ".32.0/20"),
                                 AvailabilityZone="gureum-1b")["Subnet"]["SubnetId"]
    lb_group = ec2.create_security_group(GroupName="loss-lb", Description="lb")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    web_group = ec2.create_security_group(GroupName="loss-web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": lb_group}]}])
    tg = elb.create_target_group(Name="loss-web", Protocol="HTTP", Port=8080,
                                 VpcId=vpc["VpcId"], HealthCheckIntervalSeconds=5,
                                 HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    lb = elb.create_load_balancer(Name="loss-alb", Subnets=[subnet_a],
                                  SecurityGroups=[lb_group])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP",
                                   Port=80, DefaultActions=[{"Type": "forward",
                                                             "TargetGroupArn": tg}])["Listeners"][0]
    url = f"http://{lb['AvailabilityZones'][0]['LoadBalancerAddresses'][0]['IpAddress']}/"
    template = ec2.create_launch_template(LaunchTemplateName="loss-web", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t2.micro",
        "UserData": base64.b64encode(WEB.encode()).decode(),
        "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [web_group]}]})["LaunchTemplate"]
    # Zone b first: the first member goes to the joined host.
    asg.create_auto_scaling_group(
        AutoScalingGroupName="loss", MinSize=1, MaxSize=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        VPCZoneIdentifier=f"{subnet_b},{subnet_a}", TargetGroupARNs=[tg])

    def members() -> dict[str, str]:
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["loss"])[
            "AutoScalingGroups"][0]
        return {i["InstanceId"]: i["AvailabilityZone"] for i in group["Instances"]
                if i["LifecycleState"] == "InService"}

    def healthy() -> set[str]:
        return {d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=tg)[
            "TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "healthy"}

    prefix2 = Config(data_dir=cluster.agent.data_dir).prefix
    try:
        assert wait_for(lambda: list(members().values()) == ["gureum-1b"], 90), members()
        doomed = next(iter(members()))
        wait_state(ec2, doomed, "running")
        assert f"{prefix2}-{doomed}" in sh("ip", "netns", "list").stdout

        killed_at = time.monotonic()
        assert cluster.agent.proc is not None
        cluster.agent.proc.kill()  # ours, by PID
        cluster.agent.proc.wait(10)
        sh("ip", "link", "set", cluster.second.link, "down")

        def impaired() -> bool:
            found = ec2.describe_instance_status(InstanceIds=[doomed])["InstanceStatuses"]
            return bool(found) and found[0]["SystemStatus"]["Status"] == "impaired"

        assert wait_for(impaired, 30)
        lost_after = time.monotonic() - killed_at
        assert cluster.hosts()["host2"]["state"] == "lost"

        def served_by_replacement() -> bool:
            now = members()
            if doomed in now or list(now.values()) != ["gureum-1a"]:
                return False
            if not set(now) <= healthy():
                return False
            try:
                return "ip-" in get(url)
            except OSError:
                return False

        assert wait_for(served_by_replacement, 60, interval=0.2), (members(), healthy())
        serving_after = time.monotonic() - killed_at
        replacement = next(iter(members()))
        view = wait_state(ec2, replacement, "running")
        assert get(url).startswith("ip-" + view["PrivateIpAddress"].replace(".", "-"))
        wait_state(ec2, doomed, "terminated")
        print(f"\nhost loss: lost after {lost_after:.1f} s, "
              f"replacement serving after {serving_after:.1f} s")

        # The host comes back: its stale instance is swept there.
        sh("ip", "link", "set", cluster.second.link, "up")
        cluster.agent.start(cluster.token())
        assert wait_for(lambda: cluster.hosts()["host2"]["state"] == "active", 30)
        assert wait_for(lambda: f"{prefix2}-{doomed}" not in sh("ip", "netns", "list").stdout,
                        30)
        assert "ip-" in get(url)  # the replacement keeps serving
    finally:
        sh("ip", "link", "set", cluster.second.link, "up", check=False)
        if cluster.agent.proc is None or cluster.agent.proc.poll() is not None:
            cluster.agent.start(cluster.token())
        asg.delete_auto_scaling_group(AutoScalingGroupName="loss", ForceDelete=True)
        assert wait_for(lambda: not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["loss"])["AutoScalingGroups"], 90)
        ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
        elb.delete_listener(ListenerArn=listener["ListenerArn"])
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        elb.delete_target_group(TargetGroupArn=tg)
