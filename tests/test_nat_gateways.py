"""A NAT gateway with real packets: an instance in a private subnet whose route table
sends 0.0.0.0/0 to a NAT gateway connects to a stand-in internet made here (a netns
behind a host route, so nothing leaves the machine). The VPC's router translates the
connection to the gateway's private address, as AWS's does before its internet gateway
maps that to the Elastic IP (its conntrack entry says so); the operator's
outbound switch, off in tests, still stops it at the host (the stand-in sees nothing)."""

from __future__ import annotations

import subprocess

from helpers import Network, wait_for, wait_state

OUTSIDE = "198.51.100.2"
PORT = 18081


def connect_from(netns: str) -> str:
    """A TCP connection attempt from inside an instance's netns (its address, its route)."""
    probe = (f"timeout 2 bash -c 'echo > /dev/tcp/{OUTSIDE}/{PORT}' 2>/dev/null "
             "&& echo OPEN || echo CLOSED")
    return subprocess.run(["ip", "netns", "exec", netns, "bash", "-c", probe],
                          capture_output=True, text=True).stdout.strip()


def conntrack(netns: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", netns, "cat", "/proc/net/nf_conntrack"],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"dport={PORT}" in line]


def test_nat_gateway_translates_to_its_elastic_ip(server, ec2, image_id, key_pair) -> None:  # noqa: ANN001
    prefix = server.host_objects()["nft_tables"][0].split()[-1]
    ns, link = f"{prefix}-outside", f"{prefix}o0"
    setup = [["ip", "netns", "add", ns],
             ["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns],
             ["ip", "addr", "add", "198.51.100.1/24", "dev", link],
             ["ip", "link", "set", link, "up"],
             ["ip", "-n", ns, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0"],
             ["ip", "-n", ns, "link", "set", "eth0", "up"],
             ["ip", "-n", ns, "link", "set", "lo", "up"]]
    network = Network(ec2)
    private = ec2.create_subnet(VpcId=network.vpc, CidrBlock="10.77.2.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=network.vpc)["RouteTable"]["RouteTableId"]
    assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=private)["AssociationId"]
    eip = ec2.allocate_address(Domain="vpc")
    nat_id = None
    listener = None
    try:
        for cmd in setup:
            subprocess.run(cmd, check=True)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, "python3", "-c",
             "import socket, sys; s=socket.socket(); "
             f"s.bind(('{OUTSIDE}', {PORT})); s.listen()\n"
             "while True:\n c, a = s.accept(); print(a[0], flush=True); c.close()"],
            stdout=subprocess.PIPE, text=True)
        nat_id = ec2.create_nat_gateway(SubnetId=network.subnet,
                                        AllocationId=eip["AllocationId"])["NatGateway"][
            "NatGatewayId"]
        assert wait_for(lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat_id])[
            "NatGateways"][0]["State"] == "available", 15)
        res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                MaxCount=1, KeyName=key_pair[0], SubnetId=private,
                                SecurityGroupIds=[network.group])
        network.instances.append(res["Instances"][0]["InstanceId"])
        inst = wait_state(ec2, network.instances[0], "running")
        assert "PublicIpAddress" not in inst
        instance_ns, router_ns = f"{prefix}-{inst['InstanceId']}", f"{prefix}-{network.vpc}"

        # No route out: nothing reaches the router's uplink, nothing is translated.
        assert connect_from(instance_ns) == "CLOSED"
        assert conntrack(router_ns) == []

        nat_private = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0][
            "NatGatewayAddresses"][0]["PrivateIp"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         NatGatewayId=nat_id)

        def translated() -> list[str]:
            connect_from(instance_ns)
            return [e for e in conntrack(router_ns)
                    if f"src={inst['PrivateIpAddress']} dst={OUTSIDE}" in e
                    and f"src={OUTSIDE} dst={nat_private}" in e]

        assert wait_for(lambda: translated() != [], 10), conntrack(router_ns)
        print("router conntrack:", translated()[0])
        # The operator's switch is off: the host drops it, the stand-in never sees it.
        assert connect_from(instance_ns) == "CLOSED"
        ec2.delete_nat_gateway(NatGatewayId=nat_id)
        assert wait_for(lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat_id])[
            "NatGateways"][0]["State"] == "deleted", 15)
        assert wait_for(lambda: ec2.describe_route_tables(RouteTableIds=[table])[
            "RouteTables"][0]["Routes"][-1]["State"] == "blackhole", 5)
        # Blackholed: the router translates nothing more (each attempt is a new source
        # port, so a translated one would be a new entry).
        before = len(translated())
        assert len(translated()) == before
    finally:
        if listener is not None:
            listener.kill()
            seen = listener.communicate()[0]
            assert seen.strip() == "", f"the stand-in saw a connection from {seen!r}"
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "link", "del", link], check=False, stderr=subprocess.DEVNULL)
        if network.instances:
            ec2.terminate_instances(InstanceIds=network.instances)
            for iid in network.instances:
                wait_state(ec2, iid, "terminated")
            network.instances = []
        if nat_id is not None:
            state = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]
            if state not in ("deleting", "deleted"):
                ec2.delete_nat_gateway(NatGatewayId=nat_id)
            assert wait_for(lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat_id])[
                "NatGateways"][0]["State"] == "deleted", 15)
        ec2.release_address(AllocationId=eip["AllocationId"])
        ec2.disassociate_route_table(AssociationId=assoc)
        ec2.delete_route_table(RouteTableId=table)
        ec2.delete_subnet(SubnetId=private)
        network.delete()
