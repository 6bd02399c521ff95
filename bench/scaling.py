"""Auto Scaling: how fast a group reacts, measured end to end through a real ALB.

- CPU load on the group's one instance -> a new instance in service and answering
  through the ALB (target tracking on ASGAverageCPUUtilization, target 50 %);
- an instance's web server killed -> its replacement answering (ELB health);
- an instance shut down from inside (its init ends) -> its replacement answering
  (EC2 health);
- an instance refresh of 4 instances under a constant request stream: its total time
  and failed requests (target 0).

Targets (issue #9): load -> serving < 15 s; death -> replacement serving < 5 s. AWS's
own figures are not measured here: its target tracking needs three 1-minute data points
(3+ minutes) before it acts, and its ELB health check defaults to 30-s intervals.
Run with `--metrics-interval` to see the effect of the host's sampling period (the
product default, GUREUM_METRICS_INTERVAL, is used otherwise).
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import time
import urllib.request

from common import bench_server, console, key_and_image, latency_table
from rich.table import Table

from gureum.testing import SSH_OPTS, wait_for, web_server_user_data

WEB = web_server_user_data()


def ssh(key, address: str, command: str) -> None:  # noqa: ANN001
    subprocess.run(["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{address}", command],
                   capture_output=True, timeout=30, check=False)


def answer(url: str) -> str:
    """The hostname of the instance that answered, or "" on failure."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback only)
            return (resp.read().decode().split() or [""])[0]
    except OSError:
        return ""


class Stream:
    """Requests through the ALB back to back from two threads: served and failed."""

    def __init__(self, url: str) -> None:
        import threading

        self.url, self.served, self.failures = url, 0, []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=3) as resp:  # noqa: S310
                    resp.read()
                self.served += 1
            except OSError as err:
                self.failures.append(repr(err))

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--metrics-interval", type=float, default=None)
    args = parser.parse_args()
    with bench_server("scaling") as server:
        if args.metrics_interval is None:
            del server.env["GUREUM_METRICS_INTERVAL"]  # the product default
        else:
            server.env["GUREUM_METRICS_INTERVAL"] = str(args.metrics_interval)
        server.stop()
        server.start()
        ec2, elb, asg = server.client(), server.client("elbv2"), server.client("autoscaling")
        key, image = key_and_image(ec2, server)
        subnet = ec2.describe_subnets()["Subnets"][0]
        lb_group = ec2.create_security_group(GroupName="s-lb", Description="lb")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        web = ec2.create_security_group(GroupName="s-web", Description="web")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        tg = elb.create_target_group(Name="s-tg", Protocol="HTTP", Port=8080, VpcId=subnet["VpcId"],
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2, UnhealthyThresholdCount=2)[
            "TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])
        lb = elb.create_load_balancer(Name="s-alb", Subnets=[subnet["SubnetId"]],
                                      SecurityGroups=[lb_group])["LoadBalancers"][0]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        url = f"http://{lb['AvailabilityZones'][0]['LoadBalancerAddresses'][0]['IpAddress']}/"
        lt = ec2.create_launch_template(LaunchTemplateName="s-web", LaunchTemplateData={
            "ImageId": image, "InstanceType": "t2.micro", "KeyName": "bench",
            "UserData": base64.b64encode(WEB.encode()).decode(),
            "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [web],
                                   "AssociatePublicIpAddress": True}]})["LaunchTemplate"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName="s-asg", MinSize=1, MaxSize=2, DesiredCapacity=1,
            LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"]},
            VPCZoneIdentifier=subnet["SubnetId"], TargetGroupARNs=[tg], HealthCheckType="ELB",
            HealthCheckGracePeriod=5, DefaultInstanceWarmup=10)
        asg.put_scaling_policy(
            AutoScalingGroupName="s-asg", PolicyName="cpu", PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration={"TargetValue": 50.0, "DisableScaleIn": True,
                                         "PredefinedMetricSpecification": {
                                             "PredefinedMetricType": "ASGAverageCPUUtilization"}})

        def members() -> list[str]:
            return sorted(i["InstanceId"] for i in asg.describe_auto_scaling_groups(
                AutoScalingGroupNames=["s-asg"])["AutoScalingGroups"][0]["Instances"]
                if i["LifecycleState"] == "InService")

        def hosts(ids: list[str]) -> dict[str, str]:
            found = ec2.describe_instances(InstanceIds=ids)["Reservations"]
            return {i["InstanceId"]: "ip-" + i["PrivateIpAddress"].replace(".", "-")
                    for r in found for i in r["Instances"]}

        def address(instance_id: str) -> str:
            return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
                "Instances"][0]["PublicIpAddress"]

        def steady(count: int) -> list[str]:
            if not wait_for(lambda: len(members()) == count and {
                    d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=tg)[
                        "TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "healthy"}
                    == set(members()), 120, interval=0.2):
                raise SystemExit(f"group never steady at {count}")
            return members()

        def served_by_newcomer(old: list[str], t0: float, timeout: float = 120) -> float:
            """Seconds from t0 until a request through the ALB is answered by an instance
            that was not in `old`."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                new = [m for m in members() if m not in old]
                if new:
                    names = set(hosts(new).values())
                    if answer(url) in names:
                        return time.monotonic() - t0
                time.sleep(0.05)
            raise SystemExit("no new instance ever served")

        load, killed, powered_off = [], [], []
        for _ in range(args.rounds):
            old = steady(1)
            t0 = time.monotonic()
            ssh(key, address(old[0]), "nohup sh -c 'while :; do :; done' >/dev/null 2>&1 &")
            load.append(served_by_newcomer(old, t0, 180))
            ssh(key, address(old[0]), "pkill -f 'while :'")
            asg.set_desired_capacity(AutoScalingGroupName="s-asg", DesiredCapacity=1)
            steady(1)
        for victims, how in ((killed, "sudo -n pkill -f '[/]srv/web.py'"),
                             (powered_off, "sudo -n kill -TERM 1")):
            for _ in range(args.rounds):
                old = steady(1)
                t0 = time.monotonic()  # before ssh: its own time counts (an upper bound)
                ssh(key, address(old[0]), how)
                victims.append(served_by_newcomer(old, t0))
        interval = server.env.get("GUREUM_METRICS_INTERVAL", "default (10)")
        console.print(latency_table(
            f"Auto Scaling reaction, end to end through the ALB (metrics every {interval} s; "
            "health checks every 5 s, 2 to change state)", {
                "CPU load -> new instance serving (target tracking)": load,
                "web server killed -> replacement serving (ELB health)": killed,
                "instance shut down inside -> replacement serving (EC2 health)": powered_off}))
        # An instance refresh of 4 instances under a constant request stream.
        asg.update_auto_scaling_group(AutoScalingGroupName="s-asg", MinSize=4, MaxSize=4,
                                      DesiredCapacity=4)
        steady(4)
        v2 = ec2.create_launch_template_version(
            LaunchTemplateId=lt["LaunchTemplateId"], SourceVersion="1",
            LaunchTemplateData={"InstanceType": "t3.micro"})["LaunchTemplateVersion"]
        stream = Stream(url)
        t0 = time.monotonic()
        asg.start_instance_refresh(
            AutoScalingGroupName="s-asg", Preferences={"MinHealthyPercentage": 75,
                                                       "InstanceWarmup": 0},
            DesiredConfiguration={"LaunchTemplate": {
                "LaunchTemplateId": lt["LaunchTemplateId"],
                "Version": str(v2["VersionNumber"])}})
        done = wait_for(lambda: asg.describe_instance_refreshes(AutoScalingGroupName="s-asg")[
            "InstanceRefreshes"][0]["Status"] == "Successful", 600, interval=0.2)
        took = time.monotonic() - t0
        stream.stop()
        if not done:
            raise SystemExit("the refresh did not finish")
        table = Table(title="instance refresh: 4 instances behind the ALB, MinHealthyPercentage "
                            "75 (one at a time), requests back to back from 2 clients")
        for col in ("total time (s)", "requests", "failed"):
            table.add_column(col, justify="right")
        table.add_row(f"{took:.1f}", f"{stream.served:,}", str(len(stream.failures)))
        console.print(table)
        table = Table(title="for comparison, not measured here")
        for col in ("event", "AWS default behaviour"):
            table.add_column(col)
        table.add_row("sustained CPU breach", "target tracking acts after 3 x 60-s data points")
        table.add_row("dead web server", "ELB: 30-s interval x 2 unhealthy checks, then replace")
        console.print(table)
        asg.delete_auto_scaling_group(AutoScalingGroupName="s-asg", ForceDelete=True)
        wait_for(lambda: not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["s-asg"])["AutoScalingGroups"], 120)
        wait_for(lambda: all(i["State"]["Name"] == "terminated" for r in
                             ec2.describe_instances()["Reservations"] for i in r["Instances"]), 120)
        for arn in [lb["LoadBalancerArn"]]:
            elb.delete_load_balancer(LoadBalancerArn=arn)
        wait_for(lambda: not elb.describe_load_balancers()["LoadBalancers"], 30)
        elb.delete_target_group(TargetGroupArn=tg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
