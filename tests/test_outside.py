"""Public addresses that other machines reach: a cloud whose public pool (TEST-NET-2)
answers on an interface, and a stand-in for the outside world this test builds itself: a
"laptop on the LAN" netns joined to the host by a veth pair with TEST-NET-1 addresses.
Nothing outside the machine is touched."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import VENV_BIN, WEB, Laptop, proven_clean, resolve, wait_for, wait_state

from gureum.config import Config
from gureum.testing import SSH_OPTS, Server

POOL = "198.51.100.0/24"  # TEST-NET-2
LINK = "203.0.113.0/24"  # TEST-NET-3: the laptop's LAN
HOST_SIDE, LAPTOP = "203.0.113.1", "203.0.113.2"


@pytest.fixture(scope="module")
def outside() -> Iterator[tuple[Server, Laptop]]:
    data_dir = Path(f"/var/tmp/gureum-test-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    server = Server(data_dir)
    prefix = Config(data_dir=data_dir).prefix
    laptop = Laptop(f"{prefix}-laptop", f"{prefix}o0", HOST_SIDE, LAPTOP, 24, routes=(POOL,),
                    claims=(POOL, LINK))
    server.env["GUREUM_PUBLIC_POOL"] = POOL
    server.env["GUREUM_PUBLIC_INTERFACE"] = laptop.link
    server.env["GUREUM_PUBLISH_ADDRESS"] = HOST_SIDE  # and the host's "one address" mode
    try:
        server.start()
    except BaseException:
        laptop.remove()
        raise
    yield server, laptop
    proven_clean(server, then=laptop.remove)


@pytest.fixture(scope="module")
def web(outside) -> Any:  # noqa: ANN001
    server, _ = outside
    ec2 = server.client()
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    key = server.data_dir / "outside.pem"
    key.write_text(ec2.create_key_pair(KeyName="outside", KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    group = ec2.create_security_group(GroupName="o-web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="outside",
                             UserData=WEB, SecurityGroupIds=[default, group])["Instances"][0]
    running = wait_state(ec2, inst["InstanceId"], "running")
    assert running["PublicIpAddress"].startswith("198.51.100.")
    return {"instance": running, "key": key, "group": group}


def test_the_laptop_reaches_an_instance_and_its_groups_see_the_laptop(outside, web) -> None:  # noqa: ANN001
    _, laptop = outside
    url = f"http://{web['instance']['PublicIpAddress']}:8080/"
    assert wait_for(lambda: "client=" in laptop.curl(url), 30)
    assert f"client={LAPTOP}" in laptop.curl(url), "the real client address, not the host's"
    out = laptop.run("ssh", "-i", str(web["key"]), *SSH_OPTS,
                     f"ec2-user@{web['instance']['PublicIpAddress']}", "hostname")
    assert out.stdout.strip().startswith("ip-")


def test_an_on_link_pool_is_answered_by_proxy_arp(outside, web) -> None:  # noqa: ANN001
    _, laptop = outside
    laptop.run("ip", "route", "replace", POOL, "dev", "eth0")  # the pool is on the LAN now
    try:
        url = f"http://{web['instance']['PublicIpAddress']}:8080/"
        assert wait_for(lambda: f"client={LAPTOP}" in laptop.curl(url), 10)
    finally:
        laptop.run("ip", "route", "replace", POOL, "via", HOST_SIDE)


def test_the_laptop_reaches_an_internet_facing_load_balancer(outside, web) -> None:  # noqa: ANN001
    server, laptop = outside
    elb = server.client("elbv2")
    inst = web["instance"]
    tg = elb.create_target_group(Name="o-tg", Protocol="HTTP", Port=8080, VpcId=inst["VpcId"],
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="o-alb", Subnets=[inst["SubnetId"]],
                                  SecurityGroups=[web["group"]])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])[
        "Listeners"][0]["ListenerArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": inst["InstanceId"]}])
    try:
        address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
        assert address.startswith("198.51.100.")
        assert wait_for(lambda: "client=" in laptop.curl(f"http://{address}/"), 30)
        answer = laptop.curl(f"http://{address}/")
        assert f"xff={LAPTOP}" in answer, f"the ALB passes on the real client: {answer}"
    finally:
        elb.delete_listener(ListenerArn=listener)
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        elb.delete_target_group(TargetGroupArn=tg)


def test_listeners_published_on_the_host_address(outside, web) -> None:  # noqa: ANN001
    import socket

    server, laptop = outside
    elb = server.client("elbv2")
    inst = web["instance"]
    tg = elb.create_target_group(Name="p-tg", Protocol="HTTP", Port=8080, VpcId=inst["VpcId"],
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="p-alb", Subnets=[inst["SubnetId"]],
                                  SecurityGroups=[web["group"]])["LoadBalancers"][0]
    other = elb.create_load_balancer(Name="p-other", Subnets=[inst["SubnetId"]],
                                     SecurityGroups=[web["group"]])["LoadBalancers"][0]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=8079,
                        DefaultActions=forward)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": inst["InstanceId"]}])
    taken = socket.socket()
    taken.bind((HOST_SIDE, 8078))
    taken.listen(1)
    try:
        url = f"http://{HOST_SIDE}:8079/"
        assert wait_for(lambda: "client=" in laptop.curl(url), 30)
        assert f"xff={LAPTOP}" in laptop.curl(url), "published, the client address kept"
        fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]
        for port in (8079, 8078):  # held by the first load balancer; by a program on the host
            with pytest.raises(elb.exceptions.InvalidConfigurationRequestException):
                elb.create_listener(LoadBalancerArn=other["LoadBalancerArn"], Protocol="HTTP",
                                    Port=port, DefaultActions=fixed)
    finally:
        taken.close()
        elb.delete_load_balancer(LoadBalancerArn=other["LoadBalancerArn"])
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        elb.delete_target_group(TargetGroupArn=tg)
    assert wait_for(lambda: laptop.curl(url) == "", 10), "unpublished with its load balancer"


APPS = Path(__file__).resolve().parent / "deploy_apps"


def test_deployed_apps_answer_the_laptop_by_name_over_http_and_https(outside) -> None:  # noqa: ANN001
    """`gureum deploy` of the Node and static fixtures; the laptop fetches each by its URL
    (its name resolved to the load balancer's public address, as the cloud's DNS says)
    over HTTP and HTTPS (verifying the cloud CA's certificate), and on the host address
    the listeners are published on."""
    server, laptop = outside
    elb = server.client("elbv2")
    # Port 80 of the host address held by another load balancer: a clear refusal, and
    # nothing of the app is left.
    subnet = server.client().describe_subnets()["Subnets"][0]["SubnetId"]
    squatter = elb.create_load_balancer(Name="squatter", Subnets=[subnet])["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=squatter["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "fixed-response",
                                         "FixedResponseConfig": {"StatusCode": "200"}}])
    try:
        out = subprocess.run([str(VENV_BIN / "gureum"), "deploy", str(APPS / "static"), "--name",
                              "squeezed"], env=server.env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 1 and "cannot listen on port 80" in out.stderr, out.stderr
        assert not server.client("autoscaling").describe_auto_scaling_groups()[
            "AutoScalingGroups"]
        assert not server.client().describe_images(Owners=["self"])["Images"]
        assert [lb["LoadBalancerName"] for lb in elb.describe_load_balancers()[
            "LoadBalancers"]] == ["squatter"]
    finally:
        elb.delete_load_balancer(LoadBalancerArn=squatter["LoadBalancerArn"])
    done = []
    try:
        for kind in ("node", "static"):
            app = server.data_dir / "apps" / kind
            shutil.copytree(APPS / kind, app)
            out = subprocess.run([str(VENV_BIN / "gureum"), "deploy", str(app), "--name",
                                  f"hello-{kind}"], env=server.env, capture_output=True,
                                 text=True, timeout=300)
            assert out.returncode == 0, out.stderr
            done.append(f"hello-{kind}")
        lb = server.client("elbv2").describe_load_balancers(Names=["gureum-apps"])[
            "LoadBalancers"][0]
        address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
        assert address.startswith("198.51.100.")
        ca = server.data_dir / "pki" / "ca.pem"
        for kind, words in (("node", "hello from node v"), ("static", "hello from a static")):
            host = f"hello-{kind}.gureum-1.apps.gureum.internal"
            assert resolve(server, host) == [address]
            for scheme, port in (("http", 80), ("https", 443)):
                answer = laptop.run("curl", "-s", "--max-time", "3", "--cacert", str(ca),
                                    "--resolve", f"{host}:{port}:{address}",
                                    f"{scheme}://{host}/", check=False).stdout
                assert words in answer, (scheme, host, answer)
            published = laptop.run("curl", "-s", "--max-time", "3", "-H", f"Host: {host}",
                                   f"http://{HOST_SIDE}/", check=False).stdout
            assert words in published, published
    finally:
        for app in done:
            subprocess.run([str(VENV_BIN / "gureum"), "destroy", app, "--yes"],
                           env=server.env, capture_output=True, timeout=300)
