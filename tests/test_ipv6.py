"""IPv6 in a VPC with real packets: two instances in different subnets of one VPC (each
subnet a /64 of the VPC's /56) reach each other over IPv6 through the VPC router (ICMPv6
echo sent from inside their namespaces, TCP between the guests); a security-group rule
with Ipv6Ranges opens a port that was refused and closes it again; the router's bridge
admits each port's IPv6 addresses only; an egress-only route ends in a counted drop."""

from __future__ import annotations

import ipaddress
import json
import subprocess

from helpers import ssh, wait_for, wait_state

# One ICMPv6 echo, answered type (129) or the error.
PING6 = ("import socket,sys; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, "
         "socket.IPPROTO_ICMPV6); s.settimeout(2); "
         "s.sendto(bytes([128,0,0,0,0,1,0,1])+b'gureum', (sys.argv[1], 0)); "
         "print(s.recvfrom(64)[0][0])")
CONNECT6 = ("python3 -c \"import socket,sys; c=socket.create_connection((sys.argv[1], 8080), "
            "timeout=1.5); c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); "
            "print(c.recv(12).decode())\" {address} 2>&1 | tail -1 || true")
SERVE6 = "cd /tmp; nohup python3 -m http.server --bind :: 8080 >/dev/null 2>&1 &"


def ping6(server, instance_id: str, address: str) -> str:  # noqa: ANN001
    """An ICMPv6 echo sent from inside the instance's network namespace (through its
    firewall and cable, like its own), by the host's root: the guest's unprivileged
    ICMP sockets depend on ping_group_range, which is not what is under test here."""
    prefix = server.host_objects()["nft_tables"][0].split()[-1]
    run = subprocess.run(["ip", "netns", "exec", f"{prefix}-{instance_id}", "python3", "-c",
                          PING6, address], capture_output=True, text=True)
    return (run.stdout + run.stderr).strip()


def router(server, vpc_id: str, *cmd: str) -> str:  # noqa: ANN001
    """A command's output inside the VPC's router netns."""
    prefix = server.host_objects()["nft_tables"][0].split()[-1]
    return subprocess.run(["ip", "netns", "exec", f"{prefix}-{vpc_id}", *cmd],
                          capture_output=True, text=True, check=True).stdout


def egress_drops(server, vpc_id: str) -> int:  # noqa: ANN001
    """Packets the router dropped at its uplink from subnets routed to a gateway."""
    out = router(server, vpc_id, "nft", "list", "chain", "inet", "gureum", "forward")
    line = next(x for x in out.splitlines() if "ipv6-egress" in x)
    return int(line.split("counter packets ")[1].split()[0])


def diagnose(server, vpc_id: str, key, a: dict, b: dict) -> str:  # noqa: ANN001
    """What the instances and the router have, for a failure's message."""
    out = [router(server, vpc_id, "sh", "-c", "ip -6 addr; ip -6 neigh; ip -6 route; "
                  "sysctl net.ipv6.conf.all.forwarding; nft list ruleset")]
    for inst in (a, b):
        run = ssh(key, inst["PublicIpAddress"], "ip -6 addr; ip -6 route; ip -6 neigh")
        out.append(f"{inst['InstanceId']}: {run.stdout} {run.stderr}")
    out.append(ping6(server, a["InstanceId"], b["Ipv6Address"]))
    return "\n".join(out)


def router_ipv6_ports(server, vpc_id: str) -> set[str]:  # noqa: ANN001
    """The IPv6 addresses the VPC router's bridge lets its ports send from."""
    prefix = server.host_objects()["nft_tables"][0].split()[-1]
    out = subprocess.run(["ip", "netns", "exec", f"{prefix}-{vpc_id}", "nft", "-j", "list",
                          "set", "bridge", "gureum", "port_addresses6"],
                         capture_output=True, text=True, check=True).stdout
    found = set()
    for item in json.loads(out)["nftables"]:
        for elem in item.get("set", {}).get("elem", []) or []:
            found.add(elem["concat"][1])
    return found


def test_instances_talk_over_ipv6_and_groups_apply(server, ec2, image_id,  # noqa: ANN001
                                                    key_pair) -> None:
    key = key_pair[1]
    vpc = ec2.create_vpc(CidrBlock="10.81.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    vpc_id = vpc["VpcId"]
    block = ipaddress.ip_network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
    nets = list(block.subnets(new_prefix=64))[:2]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.81.{n}.0/24",
                                 Ipv6CidrBlock=str(nets[n]))["Subnet"]["SubnetId"]
               for n in range(2)]
    ec2.modify_subnet_attribute(SubnetId=subnets[1], AssignIpv6AddressOnCreation={"Value": True})
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    group = ec2.create_security_group(GroupName="v6", Description="v6", VpcId=vpc_id)[
        "GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1,
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    instances: list[str] = []
    try:
        for subnet, extra in ((subnets[0], {"Ipv6AddressCount": 1}), (subnets[1], {})):
            res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1, KeyName=key_pair[0], NetworkInterfaces=[{
                                        "DeviceIndex": 0, "SubnetId": subnet, "Groups": [group],
                                        "AssociatePublicIpAddress": True, **extra}])
            instances.append(res["Instances"][0]["InstanceId"])
        a, b = (wait_state(ec2, i, "running") for i in instances)
        a6, b6 = a["Ipv6Address"], b["Ipv6Address"]
        assert ipaddress.ip_address(a6) in nets[0] and ipaddress.ip_address(b6) in nets[1]
        # In the instance: its address (static) and a default route via the subnet's ::1.
        shown = ssh(key, b["PublicIpAddress"], "ip -6 addr show dev eth0; ip -6 route").stdout
        assert f"{b6}/64" in shown and f"default via {nets[1][1]} dev eth0" in shown, shown
        assert router_ipv6_ports(server, vpc_id) >= {a6, b6}

        # ICMPv6 echo across subnets, both ways (the router forwards between its /64s).
        pinged = wait_for(lambda: ping6(server, a["InstanceId"], b6) == "129", 10)
        assert pinged, diagnose(server, vpc_id, key, a, b)
        assert ping6(server, b["InstanceId"], a6) == "129"
        assert ping6(server, a["InstanceId"], str(nets[0][1])) == "129"  # the router

        # TCP over IPv6: refused by B's group, then allowed by an Ipv6Ranges rule, then not.
        ssh(key, b["PublicIpAddress"], SERVE6)
        connect = lambda: ssh(key, a["PublicIpAddress"], CONNECT6.format(  # noqa: E731
            address=b6)).stdout.strip()
        assert "timed out" in connect()
        rule = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                "Ipv6Ranges": [{"CidrIpv6": str(nets[0])}]}
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
        assert wait_for(lambda: connect() == "HTTP/1.0 200", 10)
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[rule])
        assert wait_for(lambda: "timed out" in connect(), 10)
        # An IPv4 rule for the port does not open it to IPv6.
        v4_rule = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                   "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[v4_rule])
        assert wait_for(lambda: ssh(key, a["PublicIpAddress"],
                                    f"curl -s -o /dev/null -m 2 -w '%{{http_code}}' "
                                    f"http://{b['PrivateIpAddress']}:8080/ || true"
                                    ).stdout == "200", 10)
        assert "timed out" in connect()

        # An egress-only gateway: the subnets' ::/0 reaches the router's uplink, and
        # is dropped there (nothing leaves the router; the documentation prefix is never
        # routed anywhere either).
        eigw = ec2.create_egress_only_internet_gateway(VpcId=vpc_id)[
            "EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"]
        ec2.create_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0",
                         EgressOnlyInternetGatewayId=eigw)
        assert wait_for(lambda: "default dev up0" in router(server, vpc_id, "ip", "-6",
                                                            "route"), 10)
        before = egress_drops(server, vpc_id)
        assert ping6(server, a["InstanceId"], "2001:db8::1") != "129"
        assert egress_drops(server, vpc_id) > before
        ec2.delete_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0")
        ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=eigw)
        assert wait_for(lambda: "default" not in router(server, vpc_id, "ip", "-6", "route"),
                        10)

        # Unassigned: the address leaves the instance and the bridge's set.
        eni = b["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.unassign_ipv6_addresses(NetworkInterfaceId=eni, Ipv6Addresses=[b6])
        assert wait_for(lambda: b6 not in router_ipv6_ports(server, vpc_id), 10)
        assert b6 not in ssh(key, b["PublicIpAddress"], "ip -6 addr show dev eth0").stdout
    finally:
        if instances:
            ec2.terminate_instances(InstanceIds=instances)
            for iid in instances:
                wait_state(ec2, iid, "terminated")
        for row in ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0][
                "Associations"]:
            ec2.disassociate_route_table(AssociationId=row["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table)
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        ec2.delete_internet_gateway(InternetGatewayId=igw)
        ec2.delete_security_group(GroupId=group)
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc_id)
