"""Load balancer: throughput and latency through an ALB vs straight to one backend (wrk,
same run, rounds alternating), how fast a registration and a rule change take effect,
and failed requests across many changes under load.

Targets (issue #8): <= 10 % throughput loss and <= 1 ms added p99 with one backend; three
backends beat one; a new target serves < 1 s after it is healthy; a rule change is in
effect < 1 s; 0 failed requests across 100 register/deregister/rule changes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request

from common import bench_server, console, key_and_image, latency_table, terminate_all
from rich.table import Table

from gureum.testing import wait_for

# A small keep-alive HTTP/1.1 server (asyncio): the backend must not be the bottleneck.
BACKEND = """#!/bin/bash
cat > /srv/fast.py <<'EOF'
import asyncio, socket
BODY = (socket.gethostname() + "\\n").encode()
RESPONSE = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s" % (len(BODY), BODY)
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(RESPONSE)
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", 8080, backlog=1024)
    await server.serve_forever()
asyncio.run(main())
EOF
nohup python3 /srv/fast.py >/var/log/fast.log 2>&1 &
"""


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors) from wrk --latency."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, percentile("50"), percentile("99"), errors + (int(non2xx.group(1)) if non2xx else 0)


def get(url: str, timeout: float = 2) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return resp.read().decode()


def health(elb, tg: str) -> dict[str, str]:  # noqa: ANN001
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in
            elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    with bench_server("lb") as server:
        ec2, elb = server.client(), server.client("elbv2")
        _, image = key_and_image(ec2, server)
        lb_group = ec2.create_security_group(GroupName="b-lb", Description="lb")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        web = ec2.create_security_group(GroupName="b-web", Description="web")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        res = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=3, MaxCount=3,
                                UserData=BACKEND, SecurityGroupIds=[web])
        ids = [i["InstanceId"] for i in res["Instances"]]
        wait_for(lambda: all(i["State"]["Name"] == "running" for r in ec2.describe_instances(
            InstanceIds=ids)["Reservations"] for i in r["Instances"]), 120)
        insts = [r["Instances"][0] for r in (ec2.describe_instances(InstanceIds=[i])["Reservations"][0]
                                             for i in ids)]
        direct = f"http://{insts[0]['PublicIpAddress']}:8080/"
        wait_for(lambda: _answers(direct), 30)
        vpc, subnet = insts[0]["VpcId"], insts[0]["SubnetId"]
        tg = elb.create_target_group(Name="b-tg", Protocol="HTTP", Port=8080, VpcId=vpc,
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2, UnhealthyThresholdCount=2)[
            "TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])
        lb = elb.create_load_balancer(Name="b-alb", Subnets=[subnet],
                                      SecurityGroups=[lb_group])["LoadBalancers"][0]
        listener = elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
        via_lb = f"http://{lb['AvailabilityZones'][0]['LoadBalancerAddresses'][0]['IpAddress']}/"
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": ids[0]}])
        if not wait_for(lambda: health(elb, tg) == {ids[0]: "healthy"}, 60):
            raise SystemExit(f"target never healthy: {health(elb, tg)}")

        # 1. Throughput and latency, one backend: direct vs through the ALB, alternating.
        results: dict[str, list[tuple[float, float, float, int]]] = {
            "direct": [], "alb-1": [], "alb-3": []}
        for _ in range(args.rounds):
            results["direct"].append(wrk(direct, args.seconds, args.connections))
            results["alb-1"].append(wrk(via_lb, args.seconds, args.connections))
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in ids[1:]])
        if not wait_for(lambda: set(health(elb, tg).values()) == {"healthy"}, 60):
            raise SystemExit(f"targets never healthy: {health(elb, tg)}")
        for _ in range(args.rounds):
            results["alb-3"].append(wrk(via_lb, args.seconds, args.connections))
        table = Table(title=f"HTTP through the ALB vs straight to a backend "
                            f"(wrk, {args.connections} connections, {args.rounds}x{args.seconds} s)")
        for col in ("path", "req/s (median)", "p50 ms", "p99 ms", "vs direct", "errors (all rounds)"):
            table.add_column(col, justify="left" if col == "path" else "right")
        base = statistics.median(r[0] for r in results["direct"])
        for name, rows in results.items():
            rps = statistics.median(r[0] for r in rows)
            table.add_row(name, f"{rps:,.0f}", f"{statistics.median(r[1] for r in rows):.2f}",
                          f"{statistics.median(r[2] for r in rows):.2f}", f"{rps / base:.2f}x",
                          str(sum(r[3] for r in rows)))
        console.print(table)

        # 2. Registration -> the new target serves; a rule change -> in effect.
        served_after_healthy, rule_effect = [], []
        newcomer = ids[2]
        host_of = f"ip-{insts[2]['PrivateIpAddress'].replace('.', '-')}"
        for _ in range(3):
            elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": newcomer}])
            wait_for(lambda: newcomer not in health(elb, tg), 30)
            elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": newcomer}])
            wait_for(lambda: health(elb, tg).get(newcomer) == "healthy", 60, interval=0.02)
            healthy_at = time.monotonic()
            wait_for(lambda: get(via_lb).strip() == host_of, 10, interval=0.005)
            served_after_healthy.append(time.monotonic() - healthy_at)
        for n in range(10):
            t0 = time.monotonic()
            rule = elb.create_rule(ListenerArn=listener, Priority=100 + n, Conditions=[
                {"Field": "path-pattern", "Values": [f"/probe{n}"]}], Actions=[
                {"Type": "fixed-response", "FixedResponseConfig": {
                    "StatusCode": "200", "ContentType": "text/plain", "MessageBody": f"p{n}"}}])
            wait_for(lambda n=n: _body(via_lb + f"probe{n}") == f"p{n}", 10, interval=0.005)
            rule_effect.append(time.monotonic() - t0)
            elb.delete_rule(RuleArn=rule["Rules"][0]["RuleArn"])
        console.print(latency_table("changes taking effect", {
            "healthy -> first request served by the new target": served_after_healthy,
            "CreateRule -> rule in effect": rule_effect}))

        # 3. Failed requests across many changes under load.
        failures, served = [], [0]
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    get(via_lb)
                    served[0] += 1
                except (OSError, urllib.error.HTTPError) as err:
                    failures.append(str(err))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        t0 = time.monotonic()
        for n in range(args.changes):
            if n % 3 == 0:
                elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": ids[1]}])
            elif n % 3 == 1:
                elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": ids[1]}])
            else:
                rule = elb.create_rule(ListenerArn=listener, Priority=500 + n, Conditions=[
                    {"Field": "path-pattern", "Values": [f"/x{n}"]}], Actions=[
                    {"Type": "forward", "TargetGroupArn": tg}])
                elb.delete_rule(RuleArn=rule["Rules"][0]["RuleArn"])
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        stop.set()
        for worker in workers:
            worker.join()
        table = Table(title="requests under load across API changes")
        for col in ("changes", "seconds", "requests served", "failed"):
            table.add_column(col, justify="right")
        table.add_row(str(args.changes), f"{elapsed:.1f}", str(served[0]), str(len(failures)))
        console.print(table)
        if failures:
            console.print(f"first failures: {failures[:3]}")
        elb.delete_listener(ListenerArn=listener)
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        wait_for(lambda: not server.host_objects()["load_balancer_processes"], 20)
        elb.delete_target_group(TargetGroupArn=tg)
        terminate_all(ec2)
        ec2.delete_security_group(GroupId=web)
        ec2.delete_security_group(GroupId=lb_group)
    return 0


def _answers(url: str) -> bool:
    try:
        get(url, timeout=0.5)
        return True
    except OSError:
        return False


def _body(url: str) -> str:
    try:
        return get(url, timeout=1)
    except urllib.error.HTTPError as err:
        return err.read().decode()
    except OSError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
