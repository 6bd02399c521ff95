"""Network: security-group change -> port reachable, TCP throughput, and the cost of
1,000 security-group rules on connection setup.

Throughput uses one small Python sender/receiver everywhere (host loopback, host ->
public IP, instance -> instance), so the numbers compare paths, not tools.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import time

from common import bench_server, console, key_and_image, latency_table, terminate_all
from rich.table import Table

from gureum.testing import SSH_OPTS, tcp_open, wait_for

SINK = ("import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen(64)\n"
        "while True:\n c,_=s.accept()\n while c.recv(1<<20):\n  pass\n c.close()\n")
SEND = ("import socket,sys,time\nb=bytes(1<<20);n=int(sys.argv[3]);c=socket.create_connection((sys.argv[1],int(sys.argv[2])))\n"
        "t=time.perf_counter()\nfor _ in range(n): c.sendall(b)\nc.shutdown(socket.SHUT_WR);c.recv(1);c.close()\n"
        "print(n/(time.perf_counter()-t))\n")


def remote(key, ip: str, command: str, timeout: float = 120) -> str:  # noqa: ANN001
    return subprocess.run(["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{ip}", command],
                          capture_output=True, text=True, timeout=timeout, check=True).stdout


def start_sink(key, ip: str, port: int) -> None:  # noqa: ANN001
    remote(key, ip, f"cat > /tmp/sink.py <<'EOF'\n{SINK}EOF\n"
           f"nohup python3 /tmp/sink.py {port} </dev/null >/dev/null 2>&1 &")


def connect_times(ip: str, port: int, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        with socket.create_connection((ip, port), timeout=2):
            pass
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--mib", type=int, default=512)
    args = parser.parse_args()
    with bench_server("network", max_instances=64) as server:
        ec2 = server.client()
        key, image = key_and_image(ec2, server)
        default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 9000, "ToPort": 9001, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        web = ec2.create_security_group(GroupName="bench-open", Description="toggled")["GroupId"]
        res = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, KeyName="bench",
                                InstanceType="t3.large", SecurityGroupIds=[default, web])
        a, b = res["Instances"]
        for inst in (a, b):
            wait_for(lambda i=inst: ec2.describe_instances(InstanceIds=[i["InstanceId"]])[
                "Reservations"][0]["Instances"][0]["State"]["Name"] == "running", 60)
        start_sink(key, a["PublicIpAddress"], 9000)
        start_sink(key, a["PublicIpAddress"], 8080)
        wait_for(lambda: tcp_open(a["PublicIpAddress"], 9000, 0.2), 10)

        # 1. AuthorizeSecurityGroupIngress -> reachable from the host through the public IP.
        perm = [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                 "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        def open_close() -> list[float]:
            # A dropped SYN is only retried after 1 s, so probe with fresh, short connects.
            out = []
            for _ in range(args.samples):
                t0 = time.perf_counter()
                ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=perm)
                wait_for(lambda: tcp_open(a["PublicIpAddress"], 8080, 0.005), 5, interval=0.001)
                out.append(time.perf_counter() - t0)
                ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=perm)
                wait_for(lambda: not tcp_open(a["PublicIpAddress"], 8080, 0.2), 5, interval=0.01)
            return out

        opened = open_close()

        # 2. Throughput, MiB/s, same sender everywhere.
        local = subprocess.Popen(["python3", "-c", SINK, "19000"])
        wait_for(lambda: tcp_open("127.0.0.1", 19000, 0.2), 10)
        results = {}
        for name, cmd in (
            ("host -> host loopback (peer: no virtualisation)", ["python3", "-c", SEND, "127.0.0.1", "19000", str(args.mib)]),
            ("host -> instance public IP (DNAT, fwmark route, VPC router, bridge)", ["python3", "-c", SEND, a["PublicIpAddress"], "9000", str(args.mib)]),
        ):
            results[name] = [float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
                             for _ in range(3)]
        local.terminate()
        remote(key, b["PublicIpAddress"], f"cat > /tmp/send.py <<'EOF'\n{SEND}EOF\n")
        results["instance -> instance private IP (VPC bridge)"] = [
            float(remote(key, b["PublicIpAddress"], f"python3 /tmp/send.py {a['PrivateIpAddress']} 9000 {args.mib}"))
            for _ in range(3)]
        table = Table(title="TCP throughput (MiB/s, median of 3)")
        table.add_column("path")
        table.add_column("MiB/s", justify="right")
        table.add_column("vs loopback", justify="right")
        base = statistics.median(next(iter(results.values())))
        for name, values in results.items():
            table.add_row(name, f"{statistics.median(values):.0f}", f"{statistics.median(values) / base:.2f}x")
        console.print(table)

        # 3. 1,000 security-group rules: connection setup with and without them.
        before = connect_times(a["PublicIpAddress"], 9000, 300)
        groups = []
        for g in range(17):
            gid = ec2.create_security_group(GroupName=f"bench-many-{g}", Description="rules")["GroupId"]
            groups.append(gid)
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 10000 + g * 60 + r, "ToPort": 10000 + g * 60 + r,
                 "IpRanges": [{"CidrIp": f"10.{g}.{r}.0/24"}]} for r in range(60)])
        ec2.modify_instance_attribute(InstanceId=a["InstanceId"], Groups=[web, *groups, default])
        time.sleep(1.5)
        after = connect_times(a["PublicIpAddress"], 9000, 300)
        opened_many = open_close()
        console.print(latency_table("security group change -> port reachable via public IP", {
            "AuthorizeSecurityGroupIngress -> connect ok (3 rules)": opened,
            "AuthorizeSecurityGroupIngress -> connect ok (1,023 rules)": opened_many}, unit="ms"))
        console.print(latency_table(
            "TCP connect() to the public IP (the allowing rule is evaluated after the others)",
            {"3 rules on the instance": before, "1,023 rules on the instance": after}, unit="us"))
        terminate_all(ec2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
