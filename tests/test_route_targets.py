"""Routes to an instance (the NAT instance pattern) and SourceDestCheck, with real
packets: B's subnet routes C's subnet to instance A. While A's SourceDestCheck is on, A's
forwarded packets are dropped by the VPC bridge's anti-spoof set (even with forwarding
forced on in A's netns); off, A forwards (the host turns forwarding on: the guest has no
CAP_NET_ADMIN over its netns) and C sees B's own address."""

from __future__ import annotations

import subprocess

from helpers import Network, ssh, wait_for, wait_state

SERVE = "cd /tmp; nohup python3 -m http.server 8080 >/tmp/http.log 2>&1 &"


def fetch(address: str) -> str:
    return f"curl -s -o /dev/null -m 2 -w '%{{http_code}}' http://{address}:8080/ || true"


def launch_in(ec2, network: Network, image_id: str, key: str, subnet: str) -> dict:  # noqa: ANN001
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            KeyName=key, NetworkInterfaces=[{
                                "DeviceIndex": 0, "SubnetId": subnet,
                                "Groups": [network.group], "AssociatePublicIpAddress": True}])
    network.instances.append(res["Instances"][0]["InstanceId"])
    return wait_state(ec2, res["Instances"][0]["InstanceId"], "running")


def forwarded(netns: str) -> int:
    """IP datagrams the netns has forwarded (its kernel's ForwDatagrams counter)."""
    lines = subprocess.run(["ip", "netns", "exec", netns, "cat", "/proc/net/snmp"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    names, values = [line.split() for line in lines if line.startswith("Ip:")][:2]
    return int(values[names.index("ForwDatagrams")])


def test_nat_instance_pattern_and_source_dest_check(server, ec2, image_id, key_pair) -> None:  # noqa: ANN001
    network = Network(ec2)
    second = ec2.create_subnet(VpcId=network.vpc, CidrBlock="10.77.2.0/24")["Subnet"]["SubnetId"]
    third = ec2.create_subnet(VpcId=network.vpc, CidrBlock="10.77.3.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=network.vpc)["RouteTable"]["RouteTableId"]
    assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=second)["AssociationId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=network.igw)
    ec2.associate_route_table(RouteTableId=network.table, SubnetId=third)
    key = key_pair[1]
    try:
        a, = network.launch(image_id, key_pair[0])
        b = launch_in(ec2, network, image_id, key_pair[0], second)
        c = launch_in(ec2, network, image_id, key_pair[0], third)
        a_ns = server.host_objects()["nft_tables"][0].split()[-1] + "-" + a["InstanceId"]
        ssh(key, c["PublicIpAddress"], SERVE)
        from_b = lambda: ssh(key, b["PublicIpAddress"],  # noqa: E731
                             fetch(c["PrivateIpAddress"])).stdout
        assert wait_for(lambda: from_b() == "200", 10), "B reaches C directly"

        ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.77.3.0/24",
                         InstanceId=a["InstanceId"])
        assert wait_for(lambda: from_b() != "200", 10), "B's packets now go to A"
        # A forwards (forced on here, as a guest could not), but its SourceDestCheck is
        # on: the bridge drops what it sends from B's address.
        subprocess.run(["ip", "netns", "exec", a_ns, "sysctl", "-qw",
                        "net.ipv4.ip_forward=1"], check=True)
        before = forwarded(a_ns)
        assert from_b() != "200"
        assert forwarded(a_ns) > before, "A forwarded; the bridge dropped it"

        ec2.modify_instance_attribute(InstanceId=a["InstanceId"],
                                      SourceDestCheck={"Value": False})
        assert wait_for(lambda: from_b() == "200", 10), "A forwards for B"
        before = forwarded(a_ns)
        assert from_b() == "200"
        assert forwarded(a_ns) > before, "through A"
        log = ssh(key, c["PublicIpAddress"], "tail -n 1 /tmp/http.log").stdout
        assert log.split()[0] == b["PrivateIpAddress"], log  # not A's: no NAT, B's own

        ec2.modify_instance_attribute(InstanceId=a["InstanceId"],
                                      SourceDestCheck={"Value": True})
        assert wait_for(lambda: from_b() != "200", 10), "checked again"
        subprocess.run(["ip", "netns", "exec", a_ns, "sysctl", "-qw",
                        "net.ipv4.ip_forward=1"], check=True)
        assert from_b() != "200"

        ec2.delete_route(RouteTableId=table, DestinationCidrBlock="10.77.3.0/24")
        assert wait_for(lambda: from_b() == "200", 10), "direct again"
    finally:
        if network.instances:
            ec2.terminate_instances(InstanceIds=network.instances)
            for iid in network.instances:
                wait_state(ec2, iid, "terminated")
            network.instances = []
        ec2.disassociate_route_table(AssociationId=assoc)
        ec2.delete_route_table(RouteTableId=table)
        for assoc_row in ec2.describe_route_tables(RouteTableIds=[network.table])[
                "RouteTables"][0]["Associations"]:
            if assoc_row.get("SubnetId") == third:
                ec2.disassociate_route_table(AssociationId=assoc_row["RouteTableAssociationId"])
        ec2.delete_subnet(SubnetId=second)
        ec2.delete_subnet(SubnetId=third)
        network.delete()
