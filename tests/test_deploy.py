"""`gureum deploy` end to end, the CLI as a subprocess against a real cloud: first deploy,
a zero-downtime redeploy under a steady request stream, a broken release rolled back
automatically, rollback, destroy (nothing it made remains)."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers import VENV_BIN, resolve

from gureum.testing import RequestStream, Server, offline_pip_env, wait_for

APPS = Path(__file__).resolve().parent / "deploy_apps"
HOST = "hello.gureum-1.apps.gureum.internal"


PIP_ENV = offline_pip_env()


def gureum(server: Server, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "gureum"), *args], env={**server.env, **PIP_ENV},
                          capture_output=True, text=True, timeout=timeout)


def fetch(address: str, host: str = HOST, timeout: float = 3) -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, 80, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def fetch_https(server: Server, address: str, host: str = HOST) -> tuple[int, str]:
    """GET over TLS, the name sent by SNI and checked against the cloud CA's certificate."""
    import ssl

    context = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.pem"))
    with socket.create_connection((address, 443), timeout=3) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def release_answering(address: str) -> str:
    """Which release answered ("hello <release> from ..."); ValueError for a non-200."""
    status, body = fetch(address)
    if status != 200:
        raise ValueError(f"{status} {body[:80]}")
    return body.split()[1]


@pytest.fixture(scope="module")
def app_dir(server: Server) -> Path:
    path = server.data_dir / "apps" / "hello"
    shutil.copytree(APPS / "python", path)
    return path


def _version(path: Path, version: str, crash: str | None = None) -> None:
    (path / "version.txt").write_text(version + "\n")
    toml = (APPS / "python" / "gureum.toml").read_text()
    if crash:
        toml += f'CRASH = "{crash}"\n'
    (path / "gureum.toml").write_text(toml)


def test_bad_input_is_a_clear_message_and_makes_nothing(server: Server, tmp_path: Path) -> None:
    out = gureum(server, "deploy", str(tmp_path), "--name", "nothing")
    assert out.returncode == 1
    assert "no app found" in out.stderr and "Traceback" not in out.stderr
    out = gureum(server, "rollback", "ghost")
    assert out.returncode == 1 and "no app named 'ghost'" in out.stderr
    asg, ec2 = server.client("autoscaling"), server.client()
    assert not asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    # A name taken by a group gureum deploy did not make: refused, nothing built.
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    template = ec2.create_launch_template(LaunchTemplateName="someone-elses", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    asg.create_auto_scaling_group(AutoScalingGroupName="gureum-app-taken", MinSize=0, MaxSize=0,
                                  LaunchTemplate={"LaunchTemplateId": template},
                                  VPCZoneIdentifier=subnet)
    try:
        out = gureum(server, "deploy", str(APPS / "static"), "--name", "taken")
        assert out.returncode == 1 and "the name 'taken' is taken" in out.stderr, out.stderr
        assert not ec2.describe_images(Owners=["self"])["Images"]
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="gureum-app-taken", ForceDelete=True)
        ec2.delete_launch_template(LaunchTemplateId=template)


def test_deploy_redeploy_broken_rollback_destroy(server: Server, app_dir: Path) -> None:
    ec2, elb, asg = server.client(), server.client("elbv2"), server.client("autoscaling")
    # 1. First deploy: the URL answers through the shared ALB, by host name.
    _version(app_dir, "v1")
    started = time.monotonic()
    out = gureum(server, "deploy", str(app_dir), "--name", "hello")
    assert out.returncode == 0, out.stderr
    lb = elb.describe_load_balancers(Names=["gureum-apps"])["LoadBalancers"][0]
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    assert wait_for(lambda: fetch(address)[0] == 200, 30, 0.2)
    first_200 = time.monotonic() - started
    status, body = fetch(address)
    assert body.startswith("hello v1 from") and "greeting annyeong" in body
    assert f"http://{HOST}/" in out.stderr and address in out.stderr
    assert fetch(address, host="other.example")[0] == 404  # the listener's default
    # HTTPS too: the cloud's CA signed the apps' wildcard certificate.
    status, body = fetch_https(server, address)
    assert status == 200 and body.startswith("hello v1 from")
    assert resolve(server, HOST) == [address]  # gureum's public DNS knows the app's name
    # The environment is in the image's root-only file: not in the API, not on the console.
    described = json.dumps(ec2.describe_instances(), default=str)
    assert "annyeong" not in described
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["gureum-app-hello"])[
        "AutoScalingGroups"][0]
    assert group["HealthCheckType"] == "ELB" and len(group["Instances"]) == 2
    for member in group["Instances"]:
        console = ec2.get_console_output(InstanceId=member["InstanceId"]).get("Output", "")
        assert "annyeong" not in console
        assert not ec2.describe_instance_attribute(
            InstanceId=member["InstanceId"], Attribute="userData")["UserData"]

    # 2. Redeploy under a steady stream: no failed request, old then new, then only new.
    # It adds a domain of the user's own: answered by HTTP and HTTPS (a certificate the
    # cloud's CA signs, chosen by SNI).
    _version(app_dir, "v2")
    with RequestStream(lambda: release_answering(address)) as stream:
        time.sleep(1)
        started = time.monotonic()
        out = gureum(server, "deploy", str(app_dir), "--name", "hello",
                     "--domain", "shop.example.com")
        redeploy = time.monotonic() - started
        time.sleep(1)
    assert out.returncode == 0, out.stderr
    assert not stream.failures(), stream.failures()[:5]
    assert set(stream.seen) == {"v1", "v2"}
    last_old = max(i for i, v in enumerate(stream.seen) if v == "v1")
    assert stream.seen[-10:] == ["v2"] * 10 and last_old < len(stream.seen) - 10
    assert "shop.example.com: point its DNS" in out.stderr
    assert fetch(address, host="shop.example.com")[1].startswith("hello v2 from")
    assert fetch_https(server, address, "shop.example.com")[1].startswith("hello v2 from")
    assert fetch_https(server, address)[1].startswith("hello v2 from")

    # 3. A broken release: rolled back, non-zero exit with the app's own words, v2 serves.
    _version(app_dir, "v3", crash="DATABASE_URL is not set")
    with RequestStream(lambda: release_answering(address)) as stream:
        out = gureum(server, "deploy", str(app_dir), "--name", "hello")
    assert out.returncode == 1
    assert "refusing to start: DATABASE_URL is not set" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert not stream.failures(), stream.failures()[:5]
    assert set(stream.seen) == {"v2"}
    releases = gureum(server, "releases", "hello")
    assert "v2" in releases.stdout + releases.stderr and "v3" not in releases.stdout

    # A first deploy whose app never listens: exit 1 with its words, nothing of it left.
    broken = app_dir.parent / "broken"
    shutil.copytree(app_dir, broken)
    out = gureum(server, "deploy", str(broken), "--name", "broken")
    assert out.returncode == 1 and "refusing to start" in out.stderr, out.stderr
    assert not asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["gureum-app-broken"])["AutoScalingGroups"]
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"]
                if g["GroupName"] == "gureum-app-broken"]
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 2  # hello's v1 and v2

    # 4. Rollback (no rebuild): v1 serves again.
    started = time.monotonic()
    out = gureum(server, "rollback", "hello")
    rollback = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert fetch(address)[1].startswith("hello v1 from")
    print(f"\nfirst deploy -> first 200 {first_200:.1f} s, redeploy {redeploy:.1f} s, "
          f"rollback {rollback:.1f} s")

    # Scale: a third instance serves; CPU tracking is an ordinary scaling policy.
    out = gureum(server, "scale", "hello", "3")
    assert out.returncode == 0, out.stderr
    assert wait_for(lambda: len([d for d in elb.describe_target_health(
        TargetGroupArn=group["TargetGroupARNs"][0])["TargetHealthDescriptions"]
        if d["TargetHealth"]["State"] == "healthy"]) == 3, 60, 0.5)
    out = gureum(server, "scale", "hello", "--min", "3", "--cpu-target", "60")
    assert out.returncode == 0, out.stderr
    policy = asg.describe_policies(AutoScalingGroupName="gureum-app-hello")["ScalingPolicies"]
    assert [(p["PolicyType"], p["TargetTrackingConfiguration"]["TargetValue"])
            for p in policy] == [("TargetTrackingScaling", 60.0)]
    assert gureum(server, "scale", "hello", "--cpu-target", "150").returncode == 1
    out = gureum(server, "scale", "hello", "2", "--cpu-target", "0")
    assert out.returncode == 0, out.stderr
    assert not asg.describe_policies(AutoScalingGroupName="gureum-app-hello")["ScalingPolicies"]

    # An environment change is a new release of the same code, rolled out.
    out = gureum(server, "env", "hello", "set", "GREETING=hola")
    assert out.returncode == 0, out.stderr
    assert "greeting hola" in fetch(address)[1]
    assert "GREETING=hola" in gureum(server, "env", "hello").stdout

    # 5. Destroy: nothing the deploy made remains.
    assert gureum(server, "destroy", "hello").returncode == 1  # asks for --yes
    out = gureum(server, "destroy", "hello", "--yes")
    assert out.returncode == 0, out.stderr
    assert not asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert not elb.describe_load_balancers()["LoadBalancers"]
    assert not [t for t in elb.describe_target_groups()["TargetGroups"]
                if t["TargetGroupName"].startswith("gureum-app")]
    assert not ec2.describe_launch_templates()["LaunchTemplates"]
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"]
                if g["GroupName"].startswith("gureum-app")]
    assert not ec2.describe_images(Owners=["self"])["Images"]
    live = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    assert not live


def test_sigkill_of_the_cloud_mid_deploy(server: Server, tmp_path: Path) -> None:
    """The control plane dies while a redeploy rolls: the app keeps serving (its instances
    and load balancer do not depend on it) and the next deploy converges."""
    elb, asg = server.client("elbv2"), server.client("autoscaling")
    path = server.data_dir / "apps" / "sturdy"
    shutil.copytree(APPS / "python", path)
    host = "sturdy.gureum-1.apps.gureum.internal"
    _version(path, "v1")
    out = gureum(server, "deploy", str(path), "--name", "sturdy")
    assert out.returncode == 0, out.stderr
    lb = elb.describe_load_balancers(Names=["gureum-apps"])["LoadBalancers"][0]
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    _version(path, "v2")
    deploy = subprocess.Popen([str(VENV_BIN / "gureum"), "deploy", str(path), "--name",
                               "sturdy"], env={**server.env, **PIP_ENV}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: any(r["Status"] == "InProgress" for r in
                                    asg.describe_instance_refreshes(
                                        AutoScalingGroupName="gureum-app-sturdy")[
                                        "InstanceRefreshes"]), 60, 0.2)
        server.kill()
        # While the cloud is down, the app still answers through its load balancer.
        for _ in range(10):
            status, body = fetch(address, host=host)
            assert status == 200 and body.startswith("hello v"), (status, body)
            time.sleep(0.1)
        assert deploy.wait(60) != 0  # the command saw its cloud go away
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
        if server.proc is None or server.proc.poll() is not None:
            server.start()
    out = gureum(server, "deploy", str(path), "--name", "sturdy")
    assert out.returncode == 0, out.stderr
    assert wait_for(lambda: fetch(address, host=host)[1].startswith("hello v2"), 30)
    # `gureum logs APP -f`: every instance's app output, labelled, until interrupted.
    # SIGINT as a terminal's Ctrl-C delivers it: a run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then keeps it ignored.
    follow = subprocess.Popen([str(VENV_BIN / "gureum"), "logs", "sturdy", "-f"],
                              env=server.env, stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)
    follow.send_signal(signal.SIGINT)
    lines, _ = follow.communicate(timeout=10)
    assert follow.returncode == 0
    members = {m["InstanceId"] for m in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["gureum-app-sturdy"])["AutoScalingGroups"][0]["Instances"]}
    labelled = {line.split(" | ")[0] for line in lines.splitlines() if "listening on" in line}
    assert labelled == members, lines
    assert gureum(server, "destroy", "sturdy", "--yes").returncode == 0
    assert not asg.describe_auto_scaling_groups()["AutoScalingGroups"]
