"""Load balancers for real: HAProxy in the load balancer's own netns, real instances
serving their hostname behind it, real health checks, real packets from the host."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import WEB, get, ssh, wait_for, wait_state


@pytest.fixture(scope="module")
def elb(server):  # noqa: ANN001, ANN201
    return server.client("elbv2")


@pytest.fixture(scope="module")
def groups(ec2) -> Any:  # noqa: ANN001
    """lb: port 80 open to all; web: 8080 only from the load balancer's group (as on AWS)."""
    lb = ec2.create_security_group(GroupName="t-lb", Description="lb")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 81, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    web = ec2.create_security_group(GroupName="t-web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb}]}])
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    yield {"lb": lb, "web": web, "default": default}
    ec2.delete_security_group(GroupId=web)
    ec2.delete_security_group(GroupId=lb)


@pytest.fixture(scope="module")
def backends(ec2, image_id, key_pair, groups) -> Any:  # noqa: ANN001
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=3, MaxCount=3,
                            KeyName=key_pair[0], UserData=WEB,
                            SecurityGroupIds=[groups["default"], groups["web"]])
    ids = [i["InstanceId"] for i in res["Instances"]]
    instances = [wait_state(ec2, iid, "running") for iid in ids]
    yield instances
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")


@pytest.fixture(scope="module")
def alb(elb, ec2, groups, backends) -> Any:  # noqa: ANN001
    subnet = backends[0]["SubnetId"]
    vpc = backends[0]["VpcId"]
    tg = elb.create_target_group(Name="t-web", Protocol="HTTP", Port=8080, VpcId=vpc,
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2, UnhealthyThresholdCount=2)[
        "TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
    lb = elb.create_load_balancer(Name="t-alb", Subnets=[subnet],
                                  SecurityGroups=[groups["lb"]])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])[
        "Listeners"][0]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i["InstanceId"]} for i in backends])
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    yield {"tg": tg, "lb": lb, "listener": listener, "url": f"http://{address}/"}
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=tg)


def workers(server, lb_arn: str) -> list[str]:  # noqa: ANN001
    """PIDs of the load balancer's HAProxy workers (a reload replaces them)."""
    import socket

    master = server.data_dir / "lb" / lb_arn.rsplit("/", 1)[-1] / "master.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(master))
        sock.sendall(b"show proc\n")
        sock.shutdown(socket.SHUT_WR)  # the master answers, then closes
        out = b""
        while chunk := sock.recv(4096):
            out += chunk
    return [line.split()[0] for line in out.decode().splitlines()
            if line.split()[1:2] == ["worker"]]


def health(elb, tg: str) -> dict[str, str]:  # noqa: ANN001
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in
            elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}


def test_requests_spread_over_every_healthy_target(elb, alb, backends) -> None:  # noqa: ANN001
    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60), \
        health(elb, alb["tg"])
    assert elb.describe_load_balancers(LoadBalancerArns=[alb["lb"]["LoadBalancerArn"]])[
        "LoadBalancers"][0]["State"]["Code"] == "active"
    answers = [get(alb["url"]) for _ in range(30)]
    hosts = Counter(a.split()[0] for a in answers)
    assert len(hosts) == 3, hosts
    assert min(hosts.values()) >= 5, f"round robin should spread evenly: {hosts}"
    first = answers[0].split()
    assert first[1] != "xff=None" and first[2:4] == ["proto=http", "port=80"]


def test_a_dead_server_stops_getting_traffic(elb, alb, backends, key_pair) -> None:  # noqa: ANN001
    victim = backends[0]
    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60)
    ssh(key_pair[1], victim["PublicIpAddress"], "sudo -n pkill -f '[/]srv/web.py'; true")
    started = time.monotonic()
    assert wait_for(lambda: health(elb, alb["tg"])[victim["InstanceId"]] == "unhealthy", 30)
    took = time.monotonic() - started
    assert took < 5 * 2 + 5, f"unhealthy after {took:.1f}s (interval 5 s x threshold 2)"
    reason = [d["TargetHealth"] for d in elb.describe_target_health(TargetGroupArn=alb["tg"])[
        "TargetHealthDescriptions"] if d["Target"]["Id"] == victim["InstanceId"]][0]
    assert reason["Reason"] in ("Target.FailedHealthChecks", "Target.Timeout")
    answers = [get(alb["url"]) for _ in range(30)]  # every one succeeds
    assert len({a.split()[0] for a in answers}) == 2
    ssh(key_pair[1], victim["PublicIpAddress"],
        "sudo -n sh -c 'nohup python3 /srv/web.py >/var/log/web.log 2>&1 </dev/null &'")
    assert wait_for(lambda: health(elb, alb["tg"])[victim["InstanceId"]] == "healthy", 30)


def test_deregistration_drains_without_a_failed_request(server, elb, alb, backends) -> None:  # noqa: ANN001
    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60)
    before = workers(server, alb["lb"]["LoadBalancerArn"])
    failures: list[str] = []
    served: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                served[get(alb["url"]).split()[0]] += 1
            except OSError as err:
                failures.append(str(err))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(1)
        leaving = backends[1]["InstanceId"]
        elb.deregister_targets(TargetGroupArn=alb["tg"], Targets=[{"Id": leaving}])
        assert health(elb, alb["tg"])[leaving] == "draining"
        assert wait_for(lambda: leaving not in health(elb, alb["tg"]), 15)
        assert workers(server, alb["lb"]["LoadBalancerArn"]) == before, \
            "the target drained and left through the runtime API, without a reload"
        time.sleep(1)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures[:3]
    assert sum(served.values()) > 20
    elb.register_targets(TargetGroupArn=alb["tg"], Targets=[{"Id": leaving}])
    assert wait_for(lambda: health(elb, alb["tg"]).get(leaving) == "healthy", 30)


BROKEN = ("sudo -n sh -c 'nohup python3 -c \"import http.server as h\n"
          "class B(h.BaseHTTPRequestHandler):\n"
          "    def do_GET(self): self.send_error(500, \\\"broken\\\")\n"
          "h.HTTPServer((\\\"\\\", 8081), B).serve_forever()\" >/dev/null 2>&1 </dev/null &'")


def test_a_new_target_gets_no_request_before_it_passes_its_checks(
        ec2, elb, alb, backends, groups, key_pair) -> None:  # noqa: ANN001
    """HAProxy takes a server added at run time as up at once; ours starts down, so a
    target that answers 500 is never given a client's request, as on AWS."""
    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60)
    host = backends[2]
    ssh(key_pair[1], host["PublicIpAddress"], BROKEN)
    rule = {"IpProtocol": "tcp", "FromPort": 8081, "ToPort": 8081,
            "UserIdGroupPairs": [{"GroupId": groups["lb"]}]}
    ec2.authorize_security_group_ingress(GroupId=groups["web"], IpPermissions=[rule])
    broken = {"Id": host["InstanceId"], "Port": 8081}
    errors: list[str] = []
    try:
        elb.register_targets(TargetGroupArn=alb["tg"], Targets=[broken])
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                get(alb["url"])
            except urllib.error.HTTPError as err:
                errors.append(f"{err.code} {err.reason}")
        states = {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"] for d in
                  elb.describe_target_health(TargetGroupArn=alb["tg"])[
                      "TargetHealthDescriptions"]}
        assert states[(host["InstanceId"], 8081)]["State"] == "unhealthy"
        assert states[(host["InstanceId"], 8081)]["Reason"] == "Target.ResponseCodeMismatch"
    finally:
        elb.deregister_targets(TargetGroupArn=alb["tg"], Targets=[broken])
        ec2.revoke_security_group_ingress(GroupId=groups["web"], IpPermissions=[rule])
        ssh(key_pair[1], host["PublicIpAddress"], "sudo -n pkill -f '[8]081'; true")
    assert not errors, f"the unchecked target served {len(errors)} requests: {errors[:3]}"


def test_network_load_balancer_forwards_tcp_keeping_the_client_address(
        server, elb, ec2, groups, backends, key_pair) -> None:  # noqa: ANN001
    vpc, subnet = backends[0]["VpcId"], backends[0]["SubnetId"]
    tg = elb.create_target_group(Name="t-tcp", Protocol="TCP", Port=8080, VpcId=vpc,
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2)[
        "TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="t-nlb", Type="network", Subnets=[subnet],
                                  SecurityGroups=[groups["lb"]])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=81,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])[
        "Listeners"][0]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": b["InstanceId"]} for b in backends])
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]
    # The client's own address reaches the targets (as with AWS's client IP preservation),
    # so their group must let clients in: here the host, through its uplink address.
    client = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
              "IpRanges": [{"CidrIp": "169.254.86.1/32"}]}
    ec2.authorize_security_group_ingress(GroupId=groups["web"], IpPermissions=[client])
    try:
        assert wait_for(lambda: set(health(elb, tg).values()) == {"healthy"}, 60), health(elb, tg)
        url = f"http://{address['IpAddress']}:81/"
        assert wait_for(lambda: _serves(url), 10)
        answers = [get(url).split() for _ in range(12)]
        assert len({a[0] for a in answers}) == 3
        assert {a[1] for a in answers} == {"xff=None"}, "TCP passes through: no headers added"
        assert {a[4] for a in answers} == {"client=169.254.86.1"}, \
            f"the client's address, not the load balancer's {address['PrivateIPv4Address']}"
        # AWS/NetworkELB, counted where it forwards: its VPC router.
        cw = server.client("cloudwatch")
        name = "net/" + lb["LoadBalancerArn"].split("loadbalancer/net/", 1)[1]

        def total(metric: str, statistic: str = "Sum") -> float:
            points = cw.get_metric_statistics(
                Namespace="AWS/NetworkELB", MetricName=metric,
                Dimensions=[{"Name": "LoadBalancer", "Value": name}],
                StartTime=time.time() - 300, EndTime=time.time() + 60, Period=360,
                Statistics=[statistic])["Datapoints"]
            return points[0][statistic] if points else 0.0

        assert wait_for(lambda: total("NewFlowCount") >= 12, 30), total("NewFlowCount")
        assert total("ProcessedBytes") > 12 * 100
        with socket.create_connection((address["IpAddress"], 81), timeout=3):  # held open
            assert wait_for(lambda: total("ActiveFlowCount", "Maximum") >= 1, 15)
        # The NLB's own group judges its clients (in the router, before the DNAT).
        open_lb = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 81,
                   "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ec2.revoke_security_group_ingress(GroupId=groups["lb"], IpPermissions=[open_lb])
        try:
            assert wait_for(lambda: not _serves(url), 10), "closed by the NLB's group"
        finally:
            ec2.authorize_security_group_ingress(GroupId=groups["lb"], IpPermissions=[open_lb])
        assert wait_for(lambda: _serves(url), 10)
        # An unhealthy target gets no new connections; every request still succeeds.
        victim = backends[0]
        ssh(key_pair[1], victim["PublicIpAddress"], "sudo -n pkill -f '[/]srv/web.py'; true")
        assert wait_for(lambda: health(elb, tg)[victim["InstanceId"]] == "unhealthy", 30)
        time.sleep(1.5)  # the controller's next pass takes it out of the forwarding map
        assert len({get(url).split()[0] for _ in range(12)}) == 2
        ssh(key_pair[1], victim["PublicIpAddress"],
            "sudo -n sh -c 'nohup python3 /srv/web.py >/var/log/web.log 2>&1 </dev/null &'")
        assert wait_for(lambda: health(elb, tg)[victim["InstanceId"]] == "healthy", 30)
    finally:
        ec2.revoke_security_group_ingress(GroupId=groups["web"], IpPermissions=[client])
        elb.delete_listener(ListenerArn=listener["ListenerArn"])
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        elb.delete_target_group(TargetGroupArn=tg)


def request(url: str, host: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:  # noqa: S310 (loopback only)
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_rules_route_by_path_and_host(elb, alb, backends) -> None:  # noqa: ANN001
    vpc = backends[0]["VpcId"]
    api = elb.create_target_group(Name="t-api", Protocol="HTTP", Port=8080, VpcId=vpc,
                                  HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                  HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=api, Targets=[{"Id": backends[2]["InstanceId"]}])
    listener = alb["listener"]["ListenerArn"]
    path_rule = elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": api}])["Rules"][0]["RuleArn"]
    host_rule = elb.create_rule(ListenerArn=listener, Priority=20, Conditions=[
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["shop.example.*"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "the shop"}}])[
        "Rules"][0]["RuleArn"]
    try:
        with pytest.raises(elb.exceptions.PriorityInUseException):
            elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[
                {"Field": "path-pattern", "Values": ["/x"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": api}])
        assert wait_for(lambda: set(health(elb, api).values()) == {"healthy"}, 60)
        only = backends[2]["PrivateIpAddress"].replace(".", "-")
        assert wait_for(lambda: request(alb["url"] + "api/orders")[1].split()[0] == f"ip-{only}", 10)
        assert {request(alb["url"] + "api/orders")[1].split()[0] for _ in range(6)} == {f"ip-{only}"}
        assert request(alb["url"], host="shop.example.com") == (200, "the shop")
        assert len({request(alb["url"])[1].split()[0] for _ in range(12)}) >= 2  # the default
        # Priorities decide: the host rule first now, so /api/ on the shop's host is the shop.
        elb.set_rule_priorities(RulePriorities=[{"RuleArn": host_rule, "Priority": 5}])
        assert wait_for(lambda: request(alb["url"] + "api/x", host="shop.example.org")
                        == (200, "the shop"), 10)
        rules = elb.describe_rules(ListenerArn=listener)["Rules"]
        assert [r["Priority"] for r in rules] == ["5", "10", "default"]
        # A redirect, and a rule on method + query string + header.
        moved = elb.create_rule(ListenerArn=listener, Priority=30, Conditions=[
            {"Field": "path-pattern", "Values": ["/old/*"]}], Actions=[{
                "Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}",
                                                       "StatusCode": "HTTP_301"}}])[
            "Rules"][0]["RuleArn"]
        picky = elb.create_rule(ListenerArn=listener, Priority=40, Conditions=[
            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}},
            {"Field": "query-string", "QueryStringConfig": {"Values": [
                {"Key": "beta", "Value": "on"}]}},
            {"Field": "http-header", "HttpHeaderConfig": {
                "HttpHeaderName": "X-Tenant", "Values": ["acme*"]}}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "202", "ContentType": "text/plain", "MessageBody": "beta"}}])[
            "Rules"][0]["RuleArn"]
        try:
            def raw(path: str, headers: dict[str, str]) -> tuple[int, str]:
                import http.client
                conn = http.client.HTTPConnection(alb["url"].split("/")[2], timeout=3)
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheader("Location") or resp.read().decode()

            assert wait_for(lambda: raw("/old/page", {})[0] == 301, 10)
            # Until the old worker stops accepting, a new connection may still meet it.
            assert wait_for(lambda: raw("/old/page", {"Host": "a.example"})
                            == (301, "http://a.example:80/new/old/page"), 10)
            assert wait_for(lambda: raw("/x?beta=on", {"X-Tenant": "acme-corp"}) == (202, "beta"),
                            10)
            assert raw("/x?beta=off", {"X-Tenant": "acme-corp"})[1].startswith("ip-")
            assert raw("/x?beta=on", {"X-Tenant": "other"})[1].startswith("ip-")
        finally:
            elb.delete_rule(RuleArn=moved)
            elb.delete_rule(RuleArn=picky)
    finally:
        elb.delete_rule(RuleArn=path_rule)
        elb.delete_rule(RuleArn=host_rule)
    assert wait_for(lambda: request(alb["url"], host="shop.example.com")[1] != "the shop", 10)
    elb.delete_target_group(TargetGroupArn=api)


def test_instances_reach_load_balancers_by_name_internal_ones_included(
        elb, alb, backends, groups, key_pair) -> None:  # noqa: ANN001
    subnet = backends[0]["SubnetId"]
    internal = elb.create_load_balancer(Name="t-int", Subnets=[subnet], Scheme="internal",
                                        SecurityGroups=[groups["lb"]])["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=internal["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                            "StatusCode": "200", "ContentType": "text/plain",
                            "MessageBody": "internal only"}}])
    try:
        address = internal["AvailabilityZones"][0]["LoadBalancerAddresses"][0]
        assert address["IpAddress"] == address["PrivateIPv4Address"], "no public address"
        assert wait_for(lambda: elb.describe_load_balancers(
            LoadBalancerArns=[internal["LoadBalancerArn"]])["LoadBalancers"][0]["State"]["Code"]
            == "active", 20)
        client = backends[0]["PublicIpAddress"]
        out = ssh(key_pair[1], client, f"getent hosts {internal['DNSName']}; "
                  f"curl -s --max-time 3 http://{internal['DNSName']}/; echo; "
                  f"curl -s --max-time 3 http://{alb['lb']['DNSName']}/").stdout.split("\n")
        assert out[0].split()[0] == address["PrivateIPv4Address"]
        assert out[1] == "internal only"
        assert out[2].startswith("ip-"), out
    finally:
        elb.delete_load_balancer(LoadBalancerArn=internal["LoadBalancerArn"])


def test_serves_while_the_control_plane_is_down_and_a_dead_proxy_comes_back(
        server, elb, alb) -> None:  # noqa: ANN001
    import os
    import signal

    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60)
    before = workers(server, alb["lb"]["LoadBalancerArn"])
    server.kill()
    assert len({get(alb["url"]).split()[0] for _ in range(9)}) == 3, "serves without gureum up"
    server.start()
    assert wait_for(lambda: elb.describe_load_balancers(LoadBalancerArns=[
        alb["lb"]["LoadBalancerArn"]])["LoadBalancers"][0]["State"]["Code"] == "active", 30)
    assert workers(server, alb["lb"]["LoadBalancerArn"]) == before, "adopted, not restarted"
    # The proxy dies (our own process, by the PID in its pidfile): it is started again.
    pidfile = server.data_dir / "lb" / alb["lb"]["LoadBalancerArn"].rsplit("/", 1)[-1] / "haproxy.pid"
    dead = int(pidfile.read_text().split()[0])
    os.kill(dead, signal.SIGKILL)
    started = time.monotonic()
    # The killed master's worker answers for a few ms more (it exits once it notices the
    # master is gone): only an answer after a new master started proves the restart.
    assert wait_for(lambda: _master(pidfile) not in (None, dead) and _serves(alb["url"]), 15)
    assert time.monotonic() - started < 5


def _master(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _serves(url: str) -> bool:
    try:
        return get(url, timeout=1).startswith("ip-")
    except OSError:
        return False


def test_stickiness_keeps_a_client_on_one_target(elb, alb) -> None:  # noqa: ANN001
    import http.cookiejar

    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60)
    elb.modify_target_group_attributes(TargetGroupArn=alb["tg"], Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"},
        {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "120"}])
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def sticky_hosts() -> set[str]:
            jar.clear()
            return {opener.open(alb["url"], timeout=3).read().decode().split()[0]
                    for _ in range(8)}

        assert wait_for(lambda: len(sticky_hosts()) == 1, 10)
        assert any(cookie.name == "AWSALB" for cookie in jar)
    finally:
        elb.modify_target_group_attributes(TargetGroupArn=alb["tg"], Attributes=[
            {"Key": "stickiness.enabled", "Value": "false"}])
    assert wait_for(lambda: len({get(alb["url"]).split()[0] for _ in range(9)}) == 3, 10)


def test_https_listener_serves_the_imported_certificate(server, ec2, elb, alb, groups) -> None:  # noqa: ANN001
    import socket
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from gureum.testing_certs import self_signed

    acm = server.client("acm")
    cert, key = self_signed("shop.example")
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    ec2.authorize_security_group_ingress(GroupId=groups["lb"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    listener = elb.create_listener(
        LoadBalancerArn=alb["lb"]["LoadBalancerArn"], Protocol="HTTPS", Port=443,
        Certificates=[{"CertificateArn": arn}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": alb["tg"]}])["Listeners"][0]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    address = alb["url"].split("/")[2]
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    def served() -> bytes | None:
        try:
            with socket.create_connection((address, 443), timeout=2) as raw, \
                    context.wrap_socket(raw, server_hostname="shop.example") as tls:
                return tls.getpeercert(binary_form=True)
        except OSError:
            return None

    try:
        assert wait_for(lambda: served() is not None, 15)
        expected = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
        assert served() == expected
        with urllib.request.urlopen(f"https://{address}/", context=context, timeout=3) as resp:  # noqa: S310
            answer = resp.read().decode().split()
        assert answer[2:4] == ["proto=https", "port=443"]
        with pytest.raises(acm.exceptions.ResourceInUseException):
            acm.delete_certificate(CertificateArn=arn)
    finally:
        elb.delete_listener(ListenerArn=listener["ListenerArn"])
    acm.delete_certificate(CertificateArn=arn)


def test_cloudwatch_counts_the_requests(server, elb, alb) -> None:  # noqa: ANN001
    import datetime as dt

    cw = server.client("cloudwatch")
    assert wait_for(lambda: set(health(elb, alb["tg"]).values()) == {"healthy"}, 60)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    name = "app/" + alb["lb"]["LoadBalancerArn"].split("loadbalancer/app/", 1)[1]
    time.sleep(2.5)  # one measurement before the burst, so the burst is a difference
    for _ in range(20):
        get(alb["url"])

    def total(metric: str) -> float:
        points = cw.get_metric_statistics(
            Namespace="AWS/ApplicationELB", MetricName=metric,
            Dimensions=[{"Name": "LoadBalancer", "Value": name}], StartTime=start,
            EndTime=start + dt.timedelta(minutes=5), Period=300, Statistics=["Sum"])["Datapoints"]
        return points[0]["Sum"] if points else 0.0

    assert wait_for(lambda: total("RequestCount") >= 20, 15), total("RequestCount")
    assert total("HTTPCode_Target_2XX_Count") >= 20
