"""Auto Scaling for real: a group of real instances behind a real ALB, replaced when their
server dies, scaled out by their measured CPU and back in when it falls."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from helpers import WEB, get, ssh, wait_for, wait_state, web_server_user_data


@pytest.fixture(scope="module")
def asg(server):  # noqa: ANN001, ANN201
    return server.client("autoscaling")


@pytest.fixture(scope="module")
def web_tier(server, ec2, image_id, key_pair) -> Any:  # noqa: ANN001
    """An ALB (port 80) in front of a target group on :8080, and a launch template of web
    servers that only the ALB may reach."""
    elb = server.client("elbv2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    lb_group = ec2.create_security_group(GroupName="as-lb", Description="lb")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    web_group = ec2.create_security_group(GroupName="as-web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": lb_group}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    tg = elb.create_target_group(Name="as-web", Protocol="HTTP", Port=8080,
                                 VpcId=subnet["VpcId"], HealthCheckIntervalSeconds=5,
                                 HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    lb = elb.create_load_balancer(Name="as-alb", Subnets=[subnet["SubnetId"]],
                                  SecurityGroups=[lb_group])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP",
                                   Port=80, DefaultActions=[{"Type": "forward",
                                                             "TargetGroupArn": tg}])["Listeners"][0]
    template = ec2.create_launch_template(LaunchTemplateName="as-web", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t2.micro", "KeyName": key_pair[0],
        "UserData": base64.b64encode(WEB.encode()).decode(),
        "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [web_group],
                               "AssociatePublicIpAddress": True}]})["LaunchTemplate"]
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    yield {"elb": elb, "tg": tg, "template": template["LaunchTemplateId"],
           "subnet": subnet["SubnetId"], "url": f"http://{address}/"}
    ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=tg)
    for group in (web_group, lb_group):
        assert wait_for(lambda g=group: _deleted(ec2, g), 30)


def _deleted(ec2, group_id: str) -> bool:  # noqa: ANN001
    try:
        ec2.delete_security_group(GroupId=group_id)
        return True
    except Exception:  # still in use by an instance that is going away
        return False


def group(asg, name: str) -> dict:  # noqa: ANN001
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def in_service(asg, name: str) -> list[str]:  # noqa: ANN001
    return sorted(i["InstanceId"] for i in group(asg, name)["Instances"]
                  if i["LifecycleState"] == "InService")


def healthy(elb, tg: str) -> set[str]:  # noqa: ANN001
    return {d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=tg)[
        "TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "healthy"}


def serving(asg, elb, name: str, tg: str, count: int) -> bool:  # noqa: ANN001
    members = in_service(asg, name)
    return len(members) == count and healthy(elb, tg) == set(members)


def remove(asg, ec2, name: str) -> None:  # noqa: ANN001
    members = [i["InstanceId"] for i in group(asg, name)["Instances"]]
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    assert wait_for(lambda: not asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"], 60)
    for iid in members:
        wait_state(ec2, iid, "terminated")


def test_killed_server_is_replaced_and_back_behind_the_alb(asg, ec2, key_pair, web_tier) -> None:  # noqa: ANN001
    elb, tg = web_tier["elb"], web_tier["tg"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="as-web", MinSize=2, MaxSize=4, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateId": web_tier["template"], "Version": "$Latest"},
        VPCZoneIdentifier=web_tier["subnet"], TargetGroupARNs=[tg], HealthCheckType="ELB",
        HealthCheckGracePeriod=5)
    assert wait_for(lambda: serving(asg, elb, "as-web", tg, 2), 60), group(asg, "as-web")
    first = in_service(asg, "as-web")
    hosts = {get(web_tier["url"]).split()[0] for _ in range(20)}
    assert len(hosts) == 2, hosts

    victim = first[0]
    address = wait_state(ec2, victim, "running")["PublicIpAddress"]
    killed = time.monotonic()
    ssh(key_pair[1], address, "sudo -n pkill -f '[/]srv/web.py'")
    assert wait_for(lambda: victim not in in_service(asg, "as-web"), 30), group(asg, "as-web")
    detected = time.monotonic() - killed
    assert wait_for(lambda: serving(asg, elb, "as-web", tg, 2), 60), group(asg, "as-web")
    replaced = time.monotonic() - killed
    assert victim not in healthy(elb, tg) and first[1] in in_service(asg, "as-web")
    assert wait_state(ec2, victim, "terminated")
    causes = [a["Cause"] for a in asg.describe_scaling_activities(
        AutoScalingGroupName="as-web")["Activities"]]
    assert any("ELB system health check failure" in c for c in causes), causes
    print(f"killed server -> out of service {detected:.1f} s, replacement healthy in its "
          f"target group {replaced:.1f} s")
    # Every answer now comes from a live member.
    for _ in range(10):
        assert get(web_tier["url"]).split()[0]
    remove(asg, ec2, "as-web")


def test_cpu_load_scales_out_and_back_in(server, asg, ec2, key_pair, web_tier) -> None:  # noqa: ANN001
    elb, tg = web_tier["elb"], web_tier["tg"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="as-cpu", MinSize=1, MaxSize=3, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": web_tier["template"]},
        VPCZoneIdentifier=web_tier["subnet"], TargetGroupARNs=[tg], DefaultInstanceWarmup=10)
    out = asg.put_scaling_policy(
        AutoScalingGroupName="as-cpu", PolicyName="cpu50", PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={"TargetValue": 50.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ASGAverageCPUUtilization"}})
    assert len(out["Alarms"]) == 2
    assert wait_for(lambda: serving(asg, elb, "as-cpu", tg, 1), 60), group(asg, "as-cpu")
    (first,) = in_service(asg, "as-cpu")
    address = wait_state(ec2, first, "running")["PublicIpAddress"]
    # t2.micro has one vCPU: one busy loop is 100 % of it.
    ssh(key_pair[1], address, "nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $! > /tmp/burn")
    loaded = time.monotonic()
    assert wait_for(lambda: group(asg, "as-cpu")["DesiredCapacity"] >= 2, 60), \
        asg.describe_scaling_activities(AutoScalingGroupName="as-cpu")
    assert wait_for(lambda: serving(asg, elb, "as-cpu", tg, group(asg, "as-cpu")[
        "DesiredCapacity"]), 60)
    print(f"CPU load -> scaled-out instance serving: {time.monotonic() - loaded:.1f} s")
    cause = asg.describe_scaling_activities(AutoScalingGroupName="as-cpu")["Activities"][0]["Cause"]
    assert "TargetTracking-as-cpu-AlarmHigh-" in cause and "triggered policy cpu50" in cause

    ssh(key_pair[1], address, "kill $(cat /tmp/burn)")
    assert wait_for(lambda: group(asg, "as-cpu")["DesiredCapacity"] == 1, 150), \
        asg.describe_scaling_activities(AutoScalingGroupName="as-cpu")
    assert wait_for(lambda: serving(asg, elb, "as-cpu", tg, 1), 60)
    cw = server.client("cloudwatch")
    stats = cw.get_metric_statistics(
        Namespace="AWS/EC2", MetricName="CPUUtilization",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": "as-cpu"}],
        StartTime=time.time() - 600, EndTime=time.time(), Period=60, Statistics=["Maximum"])
    assert max(d["Maximum"] for d in stats["Datapoints"]) > 40  # a shared 2-core host
    remove(asg, ec2, "as-cpu")




class Stream:
    """Requests through the ALB, back to back from two threads, until stopped: what each
    answered and every failure."""

    def __init__(self, url: str) -> None:
        import threading

        self.url, self.answers, self.failures = url, [], []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.answers.append(get(self.url).split()[0])
            except OSError as err:
                self.failures.append(repr(err))

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join()


def refresh_of(asg, name: str) -> dict:  # noqa: ANN001
    return asg.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"][0]


def test_instance_refresh_under_load_fails_no_request_and_rolls_back_a_bad_version(
        asg, ec2, web_tier) -> None:  # noqa: ANN001
    elb, tg, lt = web_tier["elb"], web_tier["tg"], web_tier["template"]

    def version(text: str) -> str:
        data = {"UserData": base64.b64encode(text.encode()).decode()}
        return str(ec2.create_launch_template_version(
            LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData=data)[
            "LaunchTemplateVersion"]["VersionNumber"])

    v1 = version(web_server_user_data("v1 "))
    v2 = version(web_server_user_data("v2 "))
    broken = version("#!/bin/bash\ntrue\n")  # no web server: fails its health check
    asg.create_auto_scaling_group(
        AutoScalingGroupName="as-roll", MinSize=3, MaxSize=3, DesiredCapacity=3,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": v1},
        VPCZoneIdentifier=web_tier["subnet"], TargetGroupARNs=[tg], HealthCheckType="ELB",
        HealthCheckGracePeriod=5)
    assert wait_for(lambda: serving(asg, elb, "as-roll", tg, 3), 90), group(asg, "as-roll")
    stream = Stream(web_tier["url"])
    try:
        asg.start_instance_refresh(
            AutoScalingGroupName="as-roll", Preferences={
                "MinHealthyPercentage": 66, "InstanceWarmup": 0},
            DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": lt, "Version": v2}})
        assert wait_for(lambda: refresh_of(asg, "as-roll")["Status"] == "Successful", 180), \
            refresh_of(asg, "as-roll")
        assert wait_for(lambda: serving(asg, elb, "as-roll", tg, 3), 30)
        during = list(stream.answers)
        assert set(during) <= {"v1", "v2"} and "v2" in during, set(during)
        settled = len(stream.answers)
        time.sleep(1)
        assert set(stream.answers[settled:]) == {"v2"}, "an old instance still answers"

        asg.start_instance_refresh(
            AutoScalingGroupName="as-roll", Preferences={
                "MinHealthyPercentage": 66, "InstanceWarmup": 0, "AutoRollback": True},
            DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": lt, "Version": broken}})
        assert wait_for(lambda: refresh_of(asg, "as-roll")["Status"] == "RollbackSuccessful",
                        180), refresh_of(asg, "as-roll")
        assert "failed its health check" in refresh_of(asg, "as-roll")["StatusReason"] or \
            refresh_of(asg, "as-roll").get("RollbackDetails")
        assert wait_for(lambda: serving(asg, elb, "as-roll", tg, 3), 60)
        assert {i["LaunchTemplate"]["Version"] for i in group(asg, "as-roll")["Instances"]} == {v2}
    finally:
        stream.stop()
    print(f"refresh + rollback under load: {len(stream.answers)} requests, "
          f"{len(stream.failures)} failed")
    assert not stream.failures, stream.failures[:5]
    assert set(stream.answers) <= {"v1", "v2"}
    remove(asg, ec2, "as-roll")
