"""VPCs, subnets, internet gateways and route tables: the API with AWS's error codes, and
real isolation between VPCs (same CIDR in two accounts, and two VPCs of one account)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import PROBE, VENV_BIN, Network, wait_state

from gureum.testing import ssh, tcp_open, wait_for


def code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def tenant(server) -> Any:  # noqa: ANN001
    out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir),
                          "account", "create", "vpc-tenant"], capture_output=True, text=True,
                         check=True).stdout
    creds = json.loads(out)
    return server.client(access=creds["AccessKeyId"], secret=creds["SecretAccessKey"])


@pytest.fixture
def networks(ec2, tenant) -> Iterator[Callable[..., Network]]:  # noqa: ANN001
    made: list[Network] = []

    def make(client: Any = None, public: bool = True) -> Network:
        made.append(Network(client or ec2, public))
        return made[-1]

    yield make
    for network in reversed(made):
        network.delete()


def router_exists(server, vpc_id: str) -> bool:  # noqa: ANN001
    return any(n.endswith(vpc_id) for n in server.host_objects()["netns"])


def test_vpc_and_subnet_api_errors(ec2):
    assert code(lambda: ec2.create_vpc(CidrBlock="10.0.0.0/8")) == "InvalidVpc.Range"
    assert code(lambda: ec2.create_vpc(CidrBlock="10.0.0.0/29")) == "InvalidVpc.Range"
    assert code(lambda: ec2.create_vpc(CidrBlock="127.5.0.0/16")) == "InvalidVpc.Range"
    assert code(lambda: ec2.create_vpc(CidrBlock="10.0.0.1/16")) == "InvalidParameterValue"
    assert code(lambda: ec2.create_vpc(CidrBlock="banana")) == "InvalidParameterValue"
    assert code(lambda: ec2.delete_vpc(VpcId="vpc-0123456789abcdef0")) == "InvalidVpcID.NotFound"
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc",
                                             "Tags": [{"Key": "Name", "Value": "t"}]}])["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == "10.60.0.0/16" and vpc["IsDefault"] is False
    try:
        described = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["t"]}])["Vpcs"]
        assert [v["VpcId"] for v in described] == [vpc_id]
        assert len(ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]) == 1
        # Made with the VPC, as on AWS: a main route table and a default group.
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "RouteTables"]
        assert len(main) == 1 and main[0]["Associations"][0]["Main"] is True
        assert main[0]["Routes"] == [{"DestinationCidrBlock": "10.60.0.0/16", "GatewayId": "local",
                                      "State": "active", "Origin": "CreateRouteTable"}]
        groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        assert [g["GroupName"] for g in groups["SecurityGroups"]] == ["default"]

        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.60.1.0/24")["Subnet"]
        assert subnet["AvailableIpAddressCount"] == 251  # AWS keeps five addresses
        assert subnet["MapPublicIpOnLaunch"] is False
        assert code(lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.61.0.0/24")) \
            == "InvalidSubnet.Range"
        assert code(lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.60.0.0/17")) \
            == "InvalidSubnet.Conflict"
        assert code(lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.60.2.0/29")) \
            == "InvalidSubnet.Range"
        assert code(lambda: ec2.create_subnet(VpcId="vpc-0123456789abcdef0",
                                              CidrBlock="10.60.2.0/24")) == "InvalidVpcID.NotFound"
        assert code(lambda: ec2.delete_vpc(VpcId=vpc_id)) == "DependencyViolation"
        ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"],
                                    MapPublicIpOnLaunch={"Value": True})
        assert ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0][
            "MapPublicIpOnLaunch"] is True
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        assert code(lambda: ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])) \
            == "InvalidSubnetID.NotFound"
    finally:
        ec2.delete_vpc(VpcId=vpc_id)
    assert code(lambda: ec2.describe_vpcs(VpcIds=[vpc_id])) == "InvalidVpcID.NotFound"
    default_vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    assert code(lambda: ec2.delete_vpc(VpcId=default_vpc)) == "OperationNotPermitted"


def test_gateway_and_route_table_api_errors(ec2, networks, image_id, key_pair):
    net = networks(public=False)
    other = ec2.create_vpc(CidrBlock="10.62.0.0/16")["Vpc"]["VpcId"]
    try:
        missing = "igw-0123456789abcdef0"
        assert code(lambda: ec2.attach_internet_gateway(InternetGatewayId=missing, VpcId=net.vpc)) \
            == "InvalidInternetGatewayID.NotFound"
        assert code(lambda: ec2.detach_internet_gateway(InternetGatewayId=net.igw, VpcId=net.vpc)) \
            == "Gateway.NotAttached"
        # A route to a gateway that is not attached to this VPC.
        assert code(lambda: ec2.create_route(RouteTableId=net.table, DestinationCidrBlock="0.0.0.0/0",
                                             GatewayId=net.igw)) == "InvalidParameterValue"
        assert code(lambda: ec2.create_route(RouteTableId=net.table, DestinationCidrBlock="0.0.0.0/0",
                                             GatewayId=missing)) == "InvalidGatewayID.NotFound"
        # An EIP needs an internet gateway on the instance's VPC.
        inst = net.launch(image_id, key_pair[0])[0]
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        try:
            assert code(lambda: ec2.associate_address(AllocationId=allocation,
                                                      InstanceId=inst["InstanceId"])) \
                == "Gateway.NotAttached"
        finally:
            ec2.release_address(AllocationId=allocation)
        net.make_public()
        assert code(lambda: ec2.attach_internet_gateway(InternetGatewayId=net.igw, VpcId=other)) \
            == "Resource.AlreadyAssociated"
        spare = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        assert code(lambda: ec2.attach_internet_gateway(InternetGatewayId=spare, VpcId=net.vpc)) \
            == "Resource.AlreadyAssociated"
        ec2.delete_internet_gateway(InternetGatewayId=spare)
        assert code(lambda: ec2.delete_internet_gateway(InternetGatewayId=net.igw)) \
            == "DependencyViolation"
        # Its instance holds a public address: the gateway stays until that goes.
        assert code(lambda: ec2.detach_internet_gateway(InternetGatewayId=net.igw, VpcId=net.vpc)) \
            == "DependencyViolation"
        assert code(lambda: ec2.create_route(RouteTableId=net.table, DestinationCidrBlock="0.0.0.0/0",
                                             GatewayId=net.igw)) == "RouteAlreadyExists"
        assert code(lambda: ec2.associate_route_table(RouteTableId=net.table, SubnetId=net.subnet)) \
            == "Resource.AlreadyAssociated"
        assert code(lambda: ec2.delete_route_table(RouteTableId=net.table)) == "DependencyViolation"
        assert code(lambda: ec2.describe_route_tables(RouteTableIds=["rtb-0123456789abcdef0"])) \
            == "InvalidRouteTableID.NotFound"
        assert code(lambda: ec2.delete_route(RouteTableId=net.table,
                                             DestinationCidrBlock="10.1.0.0/16")) \
            == "InvalidRoute.NotFound"
        table = ec2.describe_route_tables(RouteTableIds=[net.table])["RouteTables"][0]
        assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": net.igw, "State": "active",
                "Origin": "CreateRoute"} in table["Routes"]
        assert table["Associations"][0]["SubnetId"] == net.subnet
        assert code(lambda: ec2.delete_vpc(VpcId=net.vpc)) == "DependencyViolation"
        # A group of another VPC cannot go on an instance of this one.
        foreign = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [other]}])[
            "SecurityGroups"][0]["GroupId"]
        assert code(lambda: ec2.run_instances(
            ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=net.subnet,
            SecurityGroupIds=[foreign])) == "InvalidParameter"
        assert code(lambda: ec2.modify_instance_attribute(
            InstanceId=inst["InstanceId"], Groups=[foreign])) == "InvalidParameter"
    finally:
        ec2.delete_vpc(VpcId=other)


def test_same_cidr_in_two_accounts_is_two_isolated_networks(server, ec2, tenant, networks,
                                                            image_id, key_pair):
    tenant_key = tenant.create_key_pair(KeyName="vpc-tenant-key", KeyType="ed25519")
    key_path = server.data_dir / "vpc-tenant-key.pem"
    key_path.write_text(tenant_key["KeyMaterial"])
    key_path.chmod(0o600)
    mine, theirs = networks(), networks(tenant)
    try:
        (a,) = mine.launch(image_id, key_pair[0])
        b1, b2 = theirs.launch(image_id, "vpc-tenant-key", count=2)
        # Same VPC range, same first address: two different machines.
        assert a["PrivateIpAddress"] == b1["PrivateIpAddress"] == "10.77.1.4"
        assert b2["PrivateIpAddress"] == "10.77.1.5"
        key_a, key_b = key_pair[1], key_path
        imds = "curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id"
        assert ssh(key_a, a["PublicIpAddress"], imds).stdout == a["InstanceId"]
        assert ssh(key_b, b1["PublicIpAddress"], imds).stdout == b1["InstanceId"]
        # Inside a VPC, instances talk; across, even the same addresses lead nowhere.
        assert ssh(key_b, b1["PublicIpAddress"], PROBE.format("10.77.1.5", 22)).stdout.strip() \
            == "OPEN"
        assert ssh(key_a, a["PublicIpAddress"], PROBE.format("10.77.1.5", 22)).stdout.strip() \
            == "CLOSED"
        # The resolver of each VPC knows only its own instances.
        look = "getent hosts {} || echo none"
        assert ssh(key_b, b1["PublicIpAddress"], look.format(b2["PrivateDnsName"])).stdout.split()[0] \
            == "10.77.1.5"
        assert ssh(key_a, a["PublicIpAddress"], look.format(b2["PrivateDnsName"])).stdout.strip() \
            == "none"
        # The default VPC of the same account is another network again.
        default = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1, KeyName=key_pair[0])["Instances"][0]
        mine.instances.append(default["InstanceId"])
        default = wait_state(ec2, default["InstanceId"], "running")
        assert ssh(key_a, default["PublicIpAddress"], PROBE.format("10.77.1.4", 22)).stdout.strip() \
            == "CLOSED"
        assert ssh(key_a, a["PublicIpAddress"],
                   PROBE.format(default["PrivateIpAddress"], 22)).stdout.strip() == "CLOSED"
    finally:
        tenant.delete_key_pair(KeyName="vpc-tenant-key")


def test_public_address_answers_only_once_the_subnet_routes_to_an_internet_gateway(
        server, ec2, image_id, key_pair):
    def plumbing() -> tuple[set[str], set[str]]:
        objects = server.host_objects()
        return set(objects["links"]), set(objects["ip_rules"])

    before = plumbing()
    net = Network(ec2, public=False)
    try:
        (inst,) = net.launch(image_id, key_pair[0])
        public = inst["PublicIpAddress"]
        assert public and not tcp_open(public, 22, timeout=0.5)
        net.make_public()  # gateway attached, default route, table associated
        assert wait_for(lambda: tcp_open(public, 22, timeout=0.5), 10)
        ec2.delete_route(RouteTableId=net.table, DestinationCidrBlock="0.0.0.0/0")
        assert wait_for(lambda: not tcp_open(public, 22, timeout=0.5), 10)
        ec2.create_route(RouteTableId=net.table, DestinationCidrBlock="0.0.0.0/0",
                         GatewayId=net.igw)
        assert wait_for(lambda: tcp_open(public, 22, timeout=0.5), 10)
        assert router_exists(server, net.vpc)
    finally:
        net.delete()
    # The VPC's router netns, uplink and policy rule go with it.
    assert wait_for(lambda: not router_exists(server, net.vpc), 15), "router netns left behind"
    def subset(a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> bool:
        return a[0] <= b[0] and a[1] <= b[1]

    assert wait_for(lambda: subset(plumbing(), before), 5), (plumbing(), before)


def test_outbound_is_off_even_for_a_public_subnet(server, ec2, networks, image_id, key_pair):
    """With the operator's outbound switch off (always, in tests), an instance in a subnet
    routed to an internet gateway still reaches nothing beyond its VPC. "Beyond" is a
    stand-in internet made here: a netns behind a host route, so nothing leaves the machine."""
    prefix = server.host_objects()["nft_tables"][0].split()[-1]
    ns, link = f"{prefix}-outside", f"{prefix}o0"
    setup = [["ip", "netns", "add", ns],
             ["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns],
             ["ip", "addr", "add", "198.51.100.1/24", "dev", link],
             ["ip", "link", "set", link, "up"],
             ["ip", "-n", ns, "addr", "add", "198.51.100.2/24", "dev", "eth0"],
             ["ip", "-n", ns, "link", "set", "eth0", "up"],
             ["ip", "-n", ns, "link", "set", "lo", "up"]]
    listener = None
    try:
        for cmd in setup:
            subprocess.run(cmd, check=True)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, "python3", "-c",
             "import socket; s=socket.socket(); s.bind(('198.51.100.2', 8080)); s.listen()\n"
             "while True: s.accept()[0].close()"])
        assert wait_for(lambda: tcp_open("198.51.100.2", 8080), 5)  # the stand-in answers
        (inst,) = networks().launch(image_id, key_pair[0])
        out = ssh(key_pair[1], inst["PublicIpAddress"], PROBE.format("198.51.100.2", 8080))
        assert out.stdout.strip() == "CLOSED"
        seed = ssh(key_pair[1], inst["PublicIpAddress"], "sudo -n cat /run/gureum/seed/outbound")
        assert seed.stdout.strip() == "0"
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "link", "del", link], check=False, stderr=subprocess.DEVNULL)


def test_vpc_dns_attributes_switch_the_resolver(ec2, networks, image_id, key_pair):
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])[
        "Vpcs"][0]["VpcId"]
    assert ec2.describe_vpc_attribute(VpcId=default_vpc, Attribute="enableDnsHostnames")[
        "EnableDnsHostnames"]["Value"] is True
    net = networks()
    attribute = lambda name: ec2.describe_vpc_attribute(  # noqa: E731
        VpcId=net.vpc, Attribute=name)
    assert attribute("enableDnsSupport")["EnableDnsSupport"]["Value"] is True
    assert attribute("enableDnsHostnames")["EnableDnsHostnames"]["Value"] is False
    assert code(lambda: ec2.modify_vpc_attribute(
        VpcId=net.vpc, EnableDnsSupport={"Value": True}, EnableDnsHostnames={"Value": True})) \
        == "InvalidParameterCombination"
    assert code(lambda: ec2.describe_vpc_attribute(VpcId="vpc-0123456789abcdef0",
                                                   Attribute="enableDnsSupport")) \
        == "InvalidVpcID.NotFound"
    (inst,) = net.launch(image_id, key_pair[0])
    assert inst["PublicIpAddress"] and inst["PublicDnsName"] == ""  # no DNS hostnames yet
    look = f"getent hosts {inst['PrivateDnsName']} || echo none"
    assert ssh(key_pair[1], inst["PublicIpAddress"], look).stdout.split()[0] == inst["PrivateIpAddress"]
    ec2.modify_vpc_attribute(VpcId=net.vpc, EnableDnsSupport={"Value": False})
    assert ssh(key_pair[1], inst["PublicIpAddress"], look).stdout.strip() == "none"
    assert code(lambda: ec2.modify_vpc_attribute(VpcId=net.vpc, EnableDnsHostnames={"Value": True})) \
        == "InvalidParameterValue"
    ec2.modify_vpc_attribute(VpcId=net.vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=net.vpc, EnableDnsHostnames={"Value": True})
    assert attribute("enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    described = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0][
        "Instances"][0]
    assert described["PublicDnsName"].startswith("ec2-")
    assert ssh(key_pair[1], inst["PublicIpAddress"], look).stdout.split()[0] == inst["PrivateIpAddress"]
