"""Host loss, for real (issue #13): the joined host of tests/test_hosts_join.py (a netns
on a veth, its own `gureum agent --join`) serves an Auto Scaling group's instance behind
a load balancer on the control host; then it dies: its agent is killed and its link cut.
It is lost after 10 s without heartbeats; its instance reports an impaired system status;
the group replaces it on the control host (the lost host's zone has no capacity left) and
the replacement serves through the load balancer. The host comes back: what the store
ended there meanwhile is swept at once. bench/hosts.py times the same drill."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from helpers import WEB, get, sh, wait_for, wait_state
from test_hosts_join import Cluster
from test_hosts_join import cluster as cluster  # noqa: PLC0414  (the module's own cluster)

from gureum.config import Config


@dataclass
class WebGroup:
    """One web server in an Auto Scaling group behind an ALB on the control host; the
    group's subnets are in the joined host's zone first, then the control host's."""

    cluster: Cluster
    ec2: Any
    elb: Any
    asg: Any
    target_group: str
    url: str
    cleanup: list[tuple[str, dict]]
    last_answer: str = ""  # what the load balancer last said (for a failure's message)

    def members(self) -> dict[str, str]:
        """In-service members and their zones."""
        group = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["loss"])[
            "AutoScalingGroups"][0]
        return {i["InstanceId"]: i["AvailabilityZone"] for i in group["Instances"]
                if i["LifecycleState"] == "InService"}

    def healthy(self) -> set[str]:
        return {d["Target"]["Id"] for d in self.elb.describe_target_health(
            TargetGroupArn=self.target_group)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"}

    def served_by(self, zone: str, not_by: str = "") -> str | None:
        """The one member, in `zone`, healthy and answering through the load balancer."""
        now = self.members()
        if not_by in now or list(now.values()) != [zone] or not set(now) <= self.healthy():
            return None
        member = next(iter(now))
        private = wait_state(self.ec2, member, "running")["PrivateIpAddress"]
        try:
            answer = get(self.url)
        except OSError as err:
            self.last_answer = f"{type(err).__name__}: {err}"
            return None
        self.last_answer = answer[:200]
        return member if answer.startswith("ip-" + private.replace(".", "-")) else None

    def kill_joined_host(self, which: int = 0) -> float:
        """A joined host (0: the second, n: `cluster.more[n - 1]`) dies: its agent
        SIGKILLed (ours, by PID) and its link cut; returns when. The cut is made inside
        the host (its eth0 down): the machine keeps its route to the dead link, so nothing
        for it is ever routed toward the machine's own network."""
        laptop, agent = self._joined(which)
        assert agent.proc is not None
        killed_at = time.monotonic()
        agent.proc.kill()
        agent.proc.wait(10)
        laptop.run("ip", "link", "set", "eth0", "down")
        return killed_at

    def revive_joined_host(self, which: int = 0) -> None:
        laptop, agent = self._joined(which)
        laptop.run("ip", "link", "set", "eth0", "up", check=False)
        if agent.proc is None or agent.proc.poll() is not None:
            agent.start(self.cluster.token())

    def _joined(self, which: int) -> tuple[Any, Any]:
        if which == 0:
            return self.cluster.second, self.cluster.agent
        return self.cluster.more[which - 1]

    def remove(self) -> None:
        for which in range(len(self.cluster.more) + 1):
            self.revive_joined_host(which)
        self.asg.delete_auto_scaling_group(AutoScalingGroupName="loss", ForceDelete=True)
        assert wait_for(lambda: not self.asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["loss"])["AutoScalingGroups"], 90)
        for call, kwargs in reversed(self.cleanup):
            client = self.ec2 if call.startswith("ec2.") else self.elb
            getattr(client, call.split(".", 1)[1])(**kwargs)


def web_group(cluster: Cluster, size: int = 1,
              zones: tuple[str, ...] = ("gureum-1b", "gureum-1a")) -> WebGroup:
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
    in_zone = {"gureum-1a": subnet_a, "gureum-1b": subnet_b}
    cleanup: list[tuple[str, dict]] = [("ec2.delete_subnet", {"SubnetId": subnet_b})]
    lb_group = ec2.create_security_group(GroupName="loss-lb", Description="lb")["GroupId"]
    web = ec2.create_security_group(GroupName="loss-web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": lb_group}]}])
    tg = elb.create_target_group(Name="loss-web", Protocol="HTTP", Port=8080,
                                 VpcId=vpc["VpcId"], HealthCheckIntervalSeconds=5,
                                 HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    cleanup.append(("elb.delete_target_group", {"TargetGroupArn": tg}))
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    lb = elb.create_load_balancer(Name="loss-alb", Subnets=[subnet_a],
                                  SecurityGroups=[lb_group])["LoadBalancers"][0]
    cleanup.append(("elb.delete_load_balancer", {"LoadBalancerArn": lb["LoadBalancerArn"]}))
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP",
                                   Port=80, DefaultActions=[{"Type": "forward",
                                                             "TargetGroupArn": tg}])["Listeners"][0]
    cleanup.append(("elb.delete_listener", {"ListenerArn": listener["ListenerArn"]}))
    template = ec2.create_launch_template(LaunchTemplateName="loss-web", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t2.micro",
        "UserData": base64.b64encode(WEB.encode()).decode(),
        "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [web]}]})["LaunchTemplate"]
    cleanup.append(("ec2.delete_launch_template",
                    {"LaunchTemplateId": template["LaunchTemplateId"]}))
    asg.create_auto_scaling_group(
        AutoScalingGroupName="loss", MinSize=size, MaxSize=size,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        VPCZoneIdentifier=",".join(in_zone[z] for z in zones), TargetGroupARNs=[tg])
    url = f"http://{lb['AvailabilityZones'][0]['LoadBalancerAddresses'][0]['IpAddress']}/"
    return WebGroup(cluster, ec2, elb, asg, tg, url, cleanup)


def test_a_lost_hosts_group_member_is_replaced_and_serves_behind_the_load_balancer(
        cluster: Cluster) -> None:
    group = web_group(cluster)
    prefix2 = Config(data_dir=cluster.agent.data_dir).prefix
    try:
        # The load balancer (on the control host) reaches its target on the joined host
        # through the VPC's segment between the hosts.
        assert wait_for(lambda: group.served_by("gureum-1b"), 150), \
            (group.members(), group.healthy(), group.last_answer)
        doomed = next(iter(group.members()))
        assert f"{prefix2}-{doomed}" in sh("ip", "netns", "list").stdout

        killed_at = group.kill_joined_host()

        def impaired() -> bool:
            found = group.ec2.describe_instance_status(InstanceIds=[doomed])["InstanceStatuses"]
            return bool(found) and found[0]["SystemStatus"]["Status"] == "impaired"

        assert wait_for(impaired, 30)
        lost_after = time.monotonic() - killed_at
        assert cluster.hosts()["host2"]["state"] == "lost"
        assert wait_for(lambda: group.served_by("gureum-1a", not_by=doomed), 90, interval=0.2), \
            (group.members(), group.healthy(), group.last_answer)
        serving_after = time.monotonic() - killed_at
        wait_state(group.ec2, doomed, "terminated")
        print(f"\nhost loss: lost after {lost_after:.1f} s, "
              f"replacement serving after {serving_after:.1f} s")

        # The host comes back: its stale instance is swept there.
        group.revive_joined_host()
        assert wait_for(lambda: cluster.hosts()["host2"]["state"] == "active", 30)
        assert wait_for(lambda: f"{prefix2}-{doomed}" not in sh("ip", "netns", "list").stdout,
                        30)
        assert group.served_by("gureum-1a")  # the replacement keeps serving
    finally:
        group.remove()
