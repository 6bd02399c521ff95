"""Tenants and containment: each escape attempt runs inside a real instance and must fail.
And a noisy neighbour (fork bomb, memory hog, disk filler, CPU spinners) must not stop
another instance's server from answering."""

from __future__ import annotations

import os
import socket
import statistics
import time
import urllib.request
from pathlib import Path

from helpers import CIDR, PROBE, Network, ssh, wait_for, wait_state

ATTEMPTS = {
    "load kernel code": "sudo -n python3 -c \"import ctypes,os; l=ctypes.CDLL(None,use_errno=True); "
                        "r=l.syscall(313,-1,b'',0); print('finit_module', r, os.strerror(ctypes.get_errno()))\"",
    "raw block devices": "ls /dev | grep -E '^(loop|sd|vd|nvme|dm-)' || echo none",
    "disk images of others": "sudo -n find / -xdev -name 'disk.img' 2>/dev/null | head -1; echo searched",
    "write a sysctl": "sudo -n sysctl -w kernel.hostname=owned 2>&1 | tail -1",
    "bpf": "sudo -n python3 -c \"import ctypes,os; l=ctypes.CDLL(None,use_errno=True); "
           "r=l.syscall(321,0,0,0); print('bpf', r, os.strerror(ctypes.get_errno()))\"",
}


def test_escape_attempts_fail(ec2, launch, key_pair, server):
    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    out = {name: ssh(key_pair[1], ip, cmd, check=False).stdout for name, cmd in ATTEMPTS.items()}
    assert "Operation not permitted" in out["load kernel code"], out
    assert out["raw block devices"].strip() == "none", out
    assert out["disk images of others"].strip() == "searched", out
    assert "owned" not in socket.gethostname()
    assert "Operation not permitted" in out["bpf"], out
    # Host processes are invisible and unsignalable: the server's PID means nothing inside.
    pid = server.proc.pid
    seen = ssh(key_pair[1], ip, f"sudo -n kill -0 {pid} 2>&1; ps -e --no-headers | wc -l", check=False).stdout
    assert "No such process" in seen or int(seen.split()[-1]) < 20
    assert os.kill(pid, 0) is None  # still alive


def test_host_services_are_not_reachable(ec2, launch, key_pair, server):
    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    gateway = server.gateway
    probe = PROBE
    # The host end of the VPC's uplink is the host itself: nothing there answers either.
    for host, port in ((gateway, server.port), ("127.0.0.1", server.port), (gateway, 22),
                       ("169.254.86.1", server.port), ("169.254.86.1", 22), (gateway, 53)):
        assert ssh(key_pair[1], ip, probe.format(host, port)).stdout.strip() == "CLOSED", (host, port)
    # ...while the designed path to the metadata service works.
    assert ssh(key_pair[1], ip, "curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id").stdout \
        == inst["InstanceId"]


def test_pids_limit_stops_a_fork_bomb(ec2, launch, key_pair):
    inst = launch(InstanceType="t3.nano")["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    script = ("import os,time\nn=0\ntry:\n while True:\n  if os.fork()==0:\n   time.sleep(20); os._exit(0)\n"
              "  n+=1\nexcept OSError as e:\n print('stopped at', n, e.strerror)\n")
    out = ssh(key_pair[1], ip, f"python3 -c \"{script}\"", timeout=60).stdout
    assert "stopped at" in out and int(out.split()[2]) < 1024, out


def latencies(url: str, count: int) -> tuple[list[float], int]:
    times, failures = [], 0
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback only)
                resp.read()
            times.append(time.perf_counter() - t0)
        except OSError:
            failures += 1
        time.sleep(0.01)
    return times, failures


def p99(values: list[float]) -> float:
    return sorted(values)[int(0.99 * (len(values) - 1))]


def cgroup(controller: str, instance_id: str) -> Path:
    (found,) = Path("/sys/fs/cgroup", controller).glob(f"*/{instance_id}")
    return found


NOISE = ("nohup sh -c 'for i in 1 2; do (while :; do :; done) & done; "
         "python3 -c \"b=[]\nwhile True: b.append(bytearray(50<<20))\" & "
         "dd if=/dev/zero of=/home/ec2-user/fill bs=1M count=2000 & "
         "python3 -c \"import os,time\nwhile True:\n  try:\n    os.fork() or time.sleep(60)\n"
         "  except OSError:\n    time.sleep(0.1)\" & "
         "wait' </dev/null >/dev/null 2>&1 &")
# The target: the neighbour's p99 within 2x of its calm p99. Other work on this shared
# 2-core machine (other test sessions) moves both figures by milliseconds from one second
# to the next, so calm and noisy are measured in alternating blocks (the noisy instance
# frozen by the cgroup freezer, then thawed) and the assertion allows 25 % on top.
TARGET, TOLERANCE = 2.0, 1.25
BLOCKS, PER_BLOCK = 8, 40


def noisy_neighbour_figures(ec2, launch, key_pair) -> tuple[list[float], list[float], float]:  # noqa: ANN001
    """(calm, noisy) latencies of a neighbour's HTTP server, and the CPU seconds the noisy
    instance used while thawed (proof that the noise ran)."""
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    web = ec2.create_security_group(GroupName="t-noisy-web", Description="8080")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    try:
        quiet = launch(SecurityGroupIds=[default, web])["Instances"][0]
        noisy = launch(InstanceType="t2.micro", BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}])["Instances"][0]
        qip = wait_state(ec2, quiet["InstanceId"], "running")["PublicIpAddress"]
        nip = wait_state(ec2, noisy["InstanceId"], "running")["PublicIpAddress"]
        ssh(key_pair[1], qip, "cd /tmp; nohup python3 -m http.server 8080 </dev/null >/dev/null 2>&1 &")
        url = f"http://{qip}:8080/"
        assert wait_for(lambda: latencies(url, 1)[1] == 0, 10)
        latencies(url, 20)  # warm
        ssh(key_pair[1], nip, NOISE)
        time.sleep(3)
        freezer = cgroup("freezer", noisy["InstanceId"]) / "freezer.state"
        usage = cgroup("cpuacct", noisy["InstanceId"]) / "cpuacct.usage"
        calm: list[float] = []
        loud: list[float] = []
        noisy_cpu = 0.0
        try:
            for _ in range(BLOCKS):
                freezer.write_text("FROZEN")
                time.sleep(0.2)
                times, failures = latencies(url, PER_BLOCK)
                assert failures == 0
                calm += times
                freezer.write_text("THAWED")
                time.sleep(0.2)
                before = int(usage.read_text())
                times, failures = latencies(url, PER_BLOCK)
                noisy_cpu += (int(usage.read_text()) - before) / 1e9
                assert failures == 0
                loud += times
        finally:
            freezer.write_text("THAWED")
        return calm, loud, noisy_cpu
    finally:
        ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in (quiet, noisy)])
        for i in (quiet, noisy):
            wait_state(ec2, i["InstanceId"], "terminated")
        ec2.delete_security_group(GroupId=web)


def test_noisy_neighbour_stays_quiet(ec2, launch, key_pair):
    calm, loud, noisy_cpu = noisy_neighbour_figures(ec2, launch, key_pair)
    ratio = p99(loud) / p99(calm)
    print(f"neighbour p50/p99 ms: calm {statistics.median(calm)*1000:.1f}/{p99(calm)*1000:.1f}, "
          f"noisy {statistics.median(loud)*1000:.1f}/{p99(loud)*1000:.1f}, p99 ratio {ratio:.2f} "
          f"(noisy instance used {noisy_cpu:.1f} CPU s while thawed)")
    # The noise ran: its two spinners kept its one vCPU busy while it was thawed.
    assert noisy_cpu > 0.5 * BLOCKS * PER_BLOCK * 0.01
    assert ratio <= TARGET * TOLERANCE


def test_an_instance_cannot_reach_another_vpc(ec2, launch, key_pair, image_id):
    """Another VPC of the same account: no route, no neighbour, no resolver, and no way
    for the instance to make one."""
    net = Network(ec2)
    try:
        (other,) = net.launch(image_id, key_pair[0])
        inst = launch()["Instances"][0]
        ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
        target = other["PrivateIpAddress"]
        resolver = "10.77.0.2"
        for host, port in ((target, 22), (resolver, 53), ("10.77.1.1", 22)):
            assert ssh(key_pair[1], ip, PROBE.format(host, port)).stdout.strip() == "CLOSED"
        dig = ("python3 -c \"import socket; s=socket.socket(2,2); s.settimeout(1); "
               f"s.sendto(bytes(12), ('{resolver}', 53)); print(s.recv(512))\" 2>&1 | tail -1")
        assert "timed out" in ssh(key_pair[1], ip, dig).stdout
        # Root in the instance cannot re-plumb its way there: the netns belongs to the host.
        out = ssh(key_pair[1], ip, f"sudo -n ip route add {CIDR} dev eth0 2>&1; "
                                   f"sudo -n ip addr add 10.77.1.200/24 dev eth0 2>&1", check=False)
        assert out.stdout.count("Operation not permitted") == 2, out.stdout
        # ...and the other way round.
        assert ssh(key_pair[1], other["PublicIpAddress"],
                   PROBE.format(inst["PrivateIpAddress"], 22)).stdout.strip() == "CLOSED"
    finally:
        net.delete()
