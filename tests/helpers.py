"""Helpers shared by the real-machine tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from gureum.testing import (  # noqa: F401  (re-exported to tests)
    VENV_BIN,
    ssh,
    wait_for,
    web_server_user_data,
)


def instance(ec2, instance_id: str) -> dict:  # noqa: ANN001
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def wait_state(ec2, instance_id: str, state: str, timeout: float = 60) -> dict:  # noqa: ANN001
    assert wait_for(lambda: instance(ec2, instance_id)["State"]["Name"] == state, timeout), (
        f"{instance_id} is {instance(ec2, instance_id)['State']['Name']}, wanted {state}")
    return instance(ec2, instance_id)


CIDR = "10.77.0.0/16"
SUBNET = "10.77.1.0/24"
PROBE = "timeout 2 bash -c 'echo > /dev/tcp/{}/{}' 2>/dev/null && echo OPEN || echo CLOSED"


class Network:
    """A VPC with one subnet, optionally public (internet gateway + default route), and a
    group open to everything; everything deleted afterwards, in AWS's order."""

    def __init__(self, ec2, public: bool = True) -> None:  # noqa: ANN001
        self.ec2 = ec2
        self.vpc = ec2.create_vpc(CidrBlock=CIDR)["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=self.vpc, CidrBlock=SUBNET)["Subnet"]["SubnetId"]
        self.group = ec2.create_security_group(GroupName="open", Description="all",
                                               VpcId=self.vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=self.group, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        self.igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        self.table = ec2.create_route_table(VpcId=self.vpc)["RouteTable"]["RouteTableId"]
        self.instances: list[str] = []
        if public:
            self.make_public()

    def make_public(self) -> None:
        self.ec2.attach_internet_gateway(InternetGatewayId=self.igw, VpcId=self.vpc)
        self.ec2.create_route(RouteTableId=self.table, DestinationCidrBlock="0.0.0.0/0",
                              GatewayId=self.igw)
        self.ec2.associate_route_table(RouteTableId=self.table, SubnetId=self.subnet)

    def launch(self, image_id: str, key_name: str, count: int = 1) -> list[dict]:
        res = self.ec2.run_instances(
            ImageId=image_id, InstanceType="t3.nano", MinCount=count, MaxCount=count,
            KeyName=key_name, NetworkInterfaces=[{
                "DeviceIndex": 0, "SubnetId": self.subnet, "Groups": [self.group],
                "AssociatePublicIpAddress": True}])
        self.instances += [i["InstanceId"] for i in res["Instances"]]
        return [wait_state(self.ec2, i["InstanceId"], "running") for i in res["Instances"]]

    def delete(self) -> None:
        ec2 = self.ec2
        if self.instances:
            ec2.terminate_instances(InstanceIds=self.instances)
            for iid in self.instances:
                wait_state(ec2, iid, "terminated")
        tables = ec2.describe_route_tables(RouteTableIds=[self.table])["RouteTables"]
        for assoc in tables[0]["Associations"]:
            ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=self.table)
        attached = ec2.describe_internet_gateways(InternetGatewayIds=[self.igw])[
            "InternetGateways"][0]["Attachments"]
        if attached:
            ec2.detach_internet_gateway(InternetGatewayId=self.igw, VpcId=self.vpc)
        ec2.delete_internet_gateway(InternetGatewayId=self.igw)
        ec2.delete_security_group(GroupId=self.group)
        ec2.delete_subnet(SubnetId=self.subnet)
        ec2.delete_vpc(VpcId=self.vpc)


def error_code(call, **kwargs) -> str:  # noqa: ANN001, ANN003
    """The AWS error code a call fails with (never a 5xx: bad input is the caller's)."""
    import pytest
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    return err.value.response["Error"]["Code"]


# User data for a web server on :8080 that answers with its hostname, the headers a load
# balancer adds, and the address the connection came from.
WEB = web_server_user_data()


def get(url: str, timeout: float = 3) -> str:
    """A GET through loopback or a namespace the tests made."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return resp.read().decode()


def resolve(server, name: str) -> list[str]:  # noqa: ANN001
    """What the cloud's public DNS answers for `name` (A records)."""
    import socket

    from dnslib import DNSRecord

    host, _, port = server.env["GUREUM_DNS_LISTEN"].rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(DNSRecord.question(name).pack(), (host, int(port)))
        return [str(rr.rdata) for rr in DNSRecord.parse(sock.recv(4096)).rr]


def sh(*cmd: str, check: bool = True, env: dict[str, str] | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check,
                          timeout=timeout, env=env)


class Laptop:
    """Another machine on the LAN: a netns joined to the host by one veth pair (host side
    `link` with `host_side`, the laptop's `eth0` with `address`), made and removed by the
    test. `routes` go from the laptop via the host; the test is skipped when the host
    already uses any network in `claims`."""

    def __init__(self, ns: str, link: str, host_side: str, address: str, prefix_len: int,
                 routes: tuple[str, ...] = (), claims: tuple[str, ...] = (),
                 gro: bool = False) -> None:
        import pytest

        self.ns, self.link, self.host_side, self.address = ns, link, host_side, address
        taken = sh("ip", "-4", "route", "show", "table", "all").stdout + \
            sh("ip", "-4", "addr", "show").stdout
        for net in claims:
            if net.rsplit(".", 1)[0] + "." in taken:
                pytest.skip(f"this host already uses {net}")
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "addr", "add", f"{host_side}/{prefix_len}", "dev", link)
        sh("ip", "link", "set", link, "up")
        for cmd in (["ip", "addr", "add", f"{address}/{prefix_len}", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"],
                    *(["ip", "route", "add", net, "via", host_side] for net in routes)):
            self.run(*cmd)
        if gro:  # as a real NIC: a veth receives packet by packet unless told
            sh("ethtool", "-K", link, "gro", "on")
            self.run("ethtool", "-K", "eth0", "gro", "on")

    def run(self, *cmd: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns, *cmd, check=check, env=env)

    def curl(self, url: str) -> str:
        return self.run("curl", "-s", "--max-time", "3", url, check=False).stdout.strip()

    def remove(self) -> None:
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "link", "del", self.link, check=False)


def proven_clean(server, then: Callable[[], None] | None = None) -> None:  # noqa: ANN001
    """After a test module's cloud: terminate what still runs, stop it (then `then`, e.g.
    removing the test's own netns), and prove no host object of its prefix is left (the
    data directory is kept for a look when one is)."""

    try:
        ec2 = server.client()
        live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        if live:
            ec2.terminate_instances(InstanceIds=live)
            wait_for(lambda: all(i["State"]["Name"] == "terminated" for r in
                                 ec2.describe_instances(InstanceIds=live)["Reservations"]
                                 for i in r["Instances"]), 60)
    finally:
        server.stop()
        if then is not None:
            then()
    leftovers = {k: v for k, v in server.host_objects().items() if v}
    if not leftovers:
        shutil.rmtree(server.data_dir, ignore_errors=True)
    assert not leftovers, f"host objects leaked: {leftovers}"
