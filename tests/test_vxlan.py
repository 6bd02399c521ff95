"""VPCs across hosts, for real (issue #13): `gureum up` on 198.18.81.1 and a joined host in
its own netns at 198.18.81.2 (tests/test_hosts_join.py's cluster: a veth the test makes,
never the machine's own network). An instance on each host, in one VPC, talks to the other
by private address over the VPC's VXLAN segment (ICMP, TCP, an SSH login); metadata and
DNS answer on each host; a second VPC with the same CIDR over the same hosts stays
isolated; a security group is enforced across hosts; nothing is left after teardown (the
cluster fixture runs `doctor --expect-clean` on both hosts)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import sh, wait_for, wait_state
from test_hosts_join import Cluster, running_cluster

from gureum.config import Config

# Another /30 than test_hosts_join.py's, so the two modules never claim the same link.
LINK, CONTROL, SECOND = "198.18.81.0/30", "198.18.81.1", "198.18.81.2"
CIDR = "10.81.0.0/16"
PROBE = textwrap.dedent("""
    import socket, sys, time
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        if kind == "icmp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            s.settimeout(1)
            s.sendto(b"\\x08\\x00\\x00\\x00\\x00\\x01\\x00\\x01gureum", (host, 0))
            print("OPEN" if s.recvfrom(100)[0][0] == 0 else "CLOSED")
        elif kind == "tcp":
            s = socket.create_connection((host, port), timeout=1)
            s.settimeout(1)
            print("OPEN", s.recv(64).decode(errors="replace").strip())
        else:  # a DNS A query for argv[4] to host:53
            q = b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00" + b"".join(
                bytes([len(p)]) + p.encode() for p in sys.argv[4].split(".")) + b"\\x00\\x00\\x01\\x00\\x01"
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(1)
            s.sendto(q, (host, port))
            answer = s.recv(512)
            print("OPEN", ".".join(str(b) for b in answer[-4:]) if answer[7] else "none")
    except OSError as err:
        print("CLOSED", err)
""")
LISTEN = "import socket,sys;s=socket.socket();s.bind(('0.0.0.0',int(sys.argv[1])));s.listen();" \
         "[c.sendall(b'hello from '+socket.gethostname().encode()) or c.close() " \
         "for c in iter(lambda: s.accept()[0], None)]"


@dataclass
class Vpc:
    vpc_id: str
    subnet_a: str  # gureum-1a: the control host
    subnet_b: str  # gureum-1b: the joined host


@dataclass
class World:
    cluster: Cluster
    key: Path
    image: str
    prefixes: dict[str, str]  # host address -> its data directory's prefix

    def netns(self, instance: dict) -> str:
        host = CONTROL if instance["Placement"]["AvailabilityZone"] == "gureum-1a" else SECOND
        return f"{self.prefixes[host]}-{instance['InstanceId']}"

    def probe(self, instance: dict, kind: str, address: str, port: int = 0,
              name: str = "") -> str:
        """From inside `instance`'s own network namespace (its eth0, its firewall)."""
        return sh("ip", "netns", "exec", self.netns(instance), "python3", "-c", PROBE, kind,
                  address, str(port), name, check=False, timeout=30).stdout.strip()

    def ssh(self, instance: dict, address: str) -> str:
        return sh("ip", "netns", "exec", self.netns(instance), "ssh", "-i", str(self.key),
                  "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                  "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"ec2-user@{address}",
                  "hostname", check=False, timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from running_cluster(LINK, CONTROL, SECOND)


@pytest.fixture(scope="module")
def world(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> World:
    ec2 = cluster.server.client()
    key = tmp_path_factory.mktemp("vxlan") / "k.pem"
    key.write_text(ec2.create_key_pair(KeyName="vxlan", KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    return World(cluster, key, image, {
        CONTROL: Config(data_dir=cluster.server.data_dir).prefix,
        SECOND: Config(data_dir=cluster.agent.data_dir).prefix})


def _vpc(world: World) -> Vpc:
    ec2 = world.cluster.server.client()
    vpc = ec2.create_vpc(CidrBlock=CIDR)["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.81.1.0/24",
                          AvailabilityZone="gureum-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.81.2.0/24",
                          AvailabilityZone="gureum-1b")["Subnet"]["SubnetId"]
    return Vpc(vpc, a, b)


def _launch(world: World, subnet: str, groups: list[str] | None = None) -> dict:
    ec2 = world.cluster.server.client()
    extra = {"SecurityGroupIds": groups} if groups else {}
    instance_id = ec2.run_instances(ImageId=world.image, InstanceType="t3.micro", MinCount=1,
                                    MaxCount=1, KeyName="vxlan", SubnetId=subnet,
                                    **extra)["Instances"][0]["InstanceId"]
    return wait_state(ec2, instance_id, "running", timeout=90)


def _vxlan_devices(world: World) -> list[dict]:
    """The vxlan devices in both hosts' routers, with their VNI and underlay address."""
    found = []
    for prefix in world.prefixes.values():
        for ns in sh("ip", "netns", "list").stdout.split():
            if ns.startswith(f"{prefix}-vpc-"):
                out = sh("ip", "-n", ns, "-j", "-d", "link", "show", "type", "vxlan").stdout
                found += [{"ns": ns, **link} for link in json.loads(out or "[]")]
    return found


@pytest.fixture(scope="module")
def spanning(world: World) -> Iterator[tuple[Vpc, dict, dict]]:
    """One VPC with an instance on each host: `a` on the control host in a group letting
    in everything from the VPC, `b` on the joined host in a group letting in SSH and ICMP from the VPC only."""
    ec2 = world.cluster.server.client()
    vpc = _vpc(world)
    web = ec2.create_security_group(GroupName="web", Description="ssh+icmp",
                                    VpcId=vpc.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": CIDR}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": CIDR}]}])
    peers = ec2.create_security_group(GroupName="peers", Description="the VPC",
                                      VpcId=vpc.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=peers, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": CIDR}]}])
    a = _launch(world, vpc.subnet_a, [peers])
    b = _launch(world, vpc.subnet_b, [web])
    try:
        yield vpc, a, b
    finally:
        ids = [a["InstanceId"], b["InstanceId"]]
        ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(ec2, instance_id, "terminated")


def test_instances_of_one_vpc_talk_across_hosts(world: World, spanning) -> None:  # noqa: ANN001
    vpc, a, b = spanning
    assert a["Placement"]["AvailabilityZone"] == "gureum-1a"
    assert b["Placement"]["AvailabilityZone"] == "gureum-1b"
    assert world.netns(b) in sh("ip", "netns", "list").stdout  # the joined host's prefix
    a_ip, b_ip = a["PrivateIpAddress"], b["PrivateIpAddress"]
    # ICMP both ways, TCP to sshd, a real login (host names are the private addresses).
    assert wait_for(lambda: world.probe(a, "icmp", b_ip) == "OPEN", 15)
    assert world.probe(b, "icmp", a_ip) == "OPEN"
    assert world.probe(a, "tcp", b_ip, 22).startswith("OPEN SSH-2.0")
    assert world.probe(b, "tcp", a_ip, 22).startswith("OPEN SSH-2.0")
    assert world.ssh(a, b_ip) == "ip-" + b_ip.replace(".", "-")
    assert world.ssh(b, a_ip) == "ip-" + a_ip.replace(".", "-")
    # One device per host, in the VPC's router, the same VNI, the underlay on the test's
    # veth (each host's registered address), nolearning; each host's guard lets that VNI
    # in from the other host only.
    devices = [d for d in _vxlan_devices(world) if d["ns"].endswith(vpc.vpc_id)]
    assert len(devices) == 2, devices
    info = [d["linkinfo"]["info_data"] for d in devices]
    assert info[0]["id"] == info[1]["id"] and {i["local"] for i in info} == {CONTROL, SECOND}
    assert all(i["port"] == 4789 and not i.get("learning", False) and i.get("proxy") for i in info)
    vni = info[0]["id"]
    guard = sh("nft", "list", "chain", "ip", world.prefixes[CONTROL], "vxlan_guard").stdout
    assert f"@th,96,24 {vni:#x} ip saddr != {SECOND} drop" in guard
    guard2 = sh("ip", "netns", "exec", world.cluster.second.ns, "nft", "list", "chain", "ip",
                world.prefixes[SECOND], "vxlan_guard").stdout
    assert f"@th,96,24 {vni:#x} ip saddr != {CONTROL} drop" in guard2


def test_metadata_and_dns_answer_on_every_host(world: World, spanning) -> None:  # noqa: ANN001
    vpc, a, b = spanning
    resolver = "10.81.0.2"
    for instance, other in ((a, b), (b, a)):
        url = "http://169.254.169.254/latest/meta-data/instance-id"
        got = sh("ip", "netns", "exec", world.netns(instance), "python3", "-c",
                 f"import urllib.request;print(urllib.request.urlopen('{url}',timeout=3).read().decode())",
                 check=False, timeout=30).stdout.strip()
        assert got == instance["InstanceId"]
        name = other["PrivateDnsName"]
        assert world.probe(instance, "dns", resolver, 53, name) == f"OPEN {other['PrivateIpAddress']}"


def test_a_security_group_is_enforced_across_hosts(world: World, spanning) -> None:  # noqa: ANN001
    """`b`'s group lets in SSH and ICMP only: a listener on 8080 in `b` is closed to `a`
    until the group allows it, and closed again when the rule goes."""
    vpc, a, b = spanning
    ec2 = world.cluster.server.client()
    listener = subprocess.Popen(
        ["ip", "netns", "exec", world.netns(b), "python3", "-c", LISTEN, "8080"])
    try:
        b_ip = b["PrivateIpAddress"]
        assert wait_for(lambda: "8080" in sh("ip", "netns", "exec", world.netns(b), "ss", "-ltn").stdout, 5)
        assert world.probe(a, "tcp", b_ip, 22).startswith("OPEN")
        assert world.probe(a, "tcp", b_ip, 8080).startswith("CLOSED")
        web = b["SecurityGroups"][0]["GroupId"]
        rule = [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                 "IpRanges": [{"CidrIp": a["PrivateIpAddress"] + "/32"}]}]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=rule)
        assert wait_for(lambda: world.probe(a, "tcp", b_ip, 8080).startswith("OPEN hello"), 10)
        ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=rule)
        assert wait_for(lambda: world.probe(a, "tcp", b_ip, 8080).startswith("CLOSED"), 10)
    finally:
        listener.terminate()
        listener.wait(10)


def test_a_second_vpc_with_the_same_cidr_stays_isolated(world: World, spanning) -> None:  # noqa: ANN001
    """Same CIDR, same two hosts: another VNI on other bridges. `c` and `d` take the same
    addresses as `a` and `b` (the same first free ones) and reach each other, not them;
    an address only the second VPC has is unreachable from the first."""
    first, a, b = spanning
    ec2 = world.cluster.server.client()
    second = _vpc(world)
    ids = []
    try:
        c = _launch(world, second.subnet_a)
        d = _launch(world, second.subnet_b)
        e = _launch(world, second.subnet_b)
        ids = [c["InstanceId"], d["InstanceId"], e["InstanceId"]]
        assert (c["PrivateIpAddress"], d["PrivateIpAddress"]) == (a["PrivateIpAddress"],
                                                                  b["PrivateIpAddress"])
        b_ip, e_ip = b["PrivateIpAddress"], e["PrivateIpAddress"]
        assert wait_for(lambda: world.probe(c, "icmp", e_ip) == "OPEN", 15)
        assert world.ssh(c, b_ip) == "ip-" + b_ip.replace(".", "-")  # d answers at b's address
        assert world.probe(c, "tcp", e_ip, 22).startswith("OPEN SSH-2.0")
        # The first VPC never reaches the second's instance, nor does the second reach
        # into the first: `d` answers `c`, and `b` (first VPC) answers `a` only.
        assert world.probe(a, "icmp", e_ip).startswith("CLOSED")
        assert world.probe(a, "tcp", e_ip, 22).startswith("CLOSED")
        vnis = {d_["ns"][-len(first.vpc_id):]: d_["linkinfo"]["info_data"]["id"]
                for d_ in _vxlan_devices(world)}
        assert vnis[first.vpc_id] != vnis[second.vpc_id]
        # The instance at b's address, seen from c, is d: its host key is d's, not b's.
        keys = {}
        for who, target in (("c", c), ("a", a)):
            out = sh("ip", "netns", "exec", world.netns(target), "ssh-keyscan", "-t", "ed25519",
                     "-T", "5", b_ip, check=False, timeout=30).stdout.split()
            keys[who] = out[-1] if out else ""
        assert keys["c"] and keys["a"] and keys["c"] != keys["a"]
    finally:
        ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(ec2, instance_id, "terminated")


PING6 = ("import socket,sys; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, "
         "socket.IPPROTO_ICMPV6); s.settimeout(2); "
         "s.sendto(bytes([128,0,0,0,0,1,0,1])+b'gureum', (sys.argv[1], 0)); "
         "print('OPEN' if s.recvfrom(64)[0][0] == 129 else 'CLOSED')")


def test_ipv6_crosses_hosts(world: World) -> None:
    """A VPC with an IPv6 block, a /64 subnet on each host: the instances reach each
    other by IPv6 across the segment (echo both ways, TCP to sshd), the remote address
    is a neighbour entry the tunnel answers for and an anti-spoof entry of the tunnel
    port, and an IPv6 group rule still decides what gets in."""
    import ipaddress

    ec2 = world.cluster.server.client()
    made = ec2.create_vpc(CidrBlock="10.83.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    vpc = made["VpcId"]
    block = ipaddress.ip_network(made["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
    nets = list(block.subnets(new_prefix=64))[:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.83.{n + 1}.0/24",
                                 Ipv6CidrBlock=str(nets[n]), AvailabilityZone=zone)[
        "Subnet"]["SubnetId"] for n, zone in enumerate(("gureum-1a", "gureum-1b"))]
    group = ec2.create_security_group(GroupName="v6", Description="v6", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1,
         "Ipv6Ranges": [{"CidrIpv6": str(block)}]}])
    # A new group's default egress is IPv4's only (AWS adds ::/0 to the default group).
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ids = []
    try:
        for subnet in subnets:
            ids += [ec2.run_instances(
                ImageId=world.image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                KeyName="vxlan", NetworkInterfaces=[{
                    "DeviceIndex": 0, "SubnetId": subnet, "Groups": [group],
                    "Ipv6AddressCount": 1}])["Instances"][0]["InstanceId"]]
        c, d = (wait_state(ec2, i, "running", timeout=90) for i in ids)
        assert (c["Placement"]["AvailabilityZone"], d["Placement"]["AvailabilityZone"]) == (
            "gureum-1a", "gureum-1b")
        c6, d6 = c["Ipv6Address"], d["Ipv6Address"]

        def ping6(source: dict, address: str) -> str:
            return sh("ip", "netns", "exec", world.netns(source), "python3", "-c", PING6,
                      address, check=False, timeout=30).stdout.strip()

        assert wait_for(lambda: ping6(c, d6) == "OPEN", 20), ping6(c, d6)
        assert ping6(d, c6) == "OPEN"
        # sshd is closed to IPv6 until a rule lets it in (the group is enforced on d's host).
        assert world.probe(c, "tcp", d6, 22).startswith("CLOSED")
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "Ipv6Ranges": [{"CidrIpv6": f"{c6}/128"}]}])
        assert wait_for(lambda: world.probe(c, "tcp", d6, 22).startswith("OPEN SSH-2.0"), 10)
        # The control host's tunnel port: d's IPv6 address is a neighbour (answered by the
        # device's proxy) and an address the port may carry.
        router = f"{world.prefixes[CONTROL]}-{vpc}"
        device = next(x for x in _vxlan_devices(world) if x["ns"] == router)["ifname"]
        neighbours = sh("ip", "-n", router, "-6", "neigh", "show", "dev", device).stdout
        assert d6 in neighbours, neighbours
        ports = sh("ip", "netns", "exec", router, "nft", "list", "set", "bridge", "gureum",
                   "port_addresses6").stdout
        assert f'"{device}" . {d6}' in ports, ports
    finally:
        ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(ec2, instance_id, "terminated")
        ec2.delete_security_group(GroupId=group)
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)


def test_devices_go_when_the_vpc_no_longer_spans_hosts(world: World, spanning) -> None:  # noqa: ANN001
    vpc, a, b = spanning
    ec2 = world.cluster.server.client()
    ec2.stop_instances(InstanceIds=[b["InstanceId"]])
    wait_state(ec2, b["InstanceId"], "stopped")
    assert wait_for(lambda: not [d for d in _vxlan_devices(world)
                                 if d["ns"].endswith(vpc.vpc_id)], 10), _vxlan_devices(world)
    assert f"ip saddr != {SECOND} drop" not in sh(
        "nft", "list", "chain", "ip", world.prefixes[CONTROL], "vxlan_guard").stdout
