"""A secondary CIDR block with real packets: an instance in a subnet of the secondary
block and one in the primary block reach each other (the local route covers both), and
the host reaches the secondary one on its public address (its VPC's routing table holds
both blocks); after the block is gone, its host route is gone too."""

from __future__ import annotations

import json
import subprocess

from helpers import Network, ssh, wait_for, wait_state

SERVE = "cd /tmp; nohup python3 -m http.server 8080 >/dev/null 2>&1 &"


def fetch(address: str) -> str:
    return f"curl -s -o /dev/null -m 2 -w '%{{http_code}}' http://{address}:8080/ || true"


def host_routes(server, vpc_id: str) -> set[str]:  # noqa: ANN001
    """The destinations of the VPC's routing table on the host (found by its uplink)."""
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                                       capture_output=True, text=True, check=True).stdout)
    prefix = server.host_objects()["nft_tables"][0].split()[-1]
    router = f"{prefix}-{vpc_id}"
    up = json.loads(subprocess.run(["ip", "-n", router, "-j", "link", "show", "up0"],
                                   capture_output=True, text=True, check=True).stdout)[0]
    uplink = next(link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)
        if link["ifindex"] == up["link_index"])
    return {r["dst"] for r in routes if r.get("dev") == uplink
            and str(r.get("table", "")).isdigit()}


def test_instances_in_both_blocks_talk(server, ec2, image_id, key_pair) -> None:  # noqa: ANN001
    network = Network(ec2)
    association = ec2.associate_vpc_cidr_block(VpcId=network.vpc, CidrBlock="10.78.0.0/16")[
        "CidrBlockAssociation"]["AssociationId"]
    second = ec2.create_subnet(VpcId=network.vpc, CidrBlock="10.78.1.0/24")["Subnet"]["SubnetId"]
    assoc = ec2.associate_route_table(RouteTableId=network.table, SubnetId=second)[
        "AssociationId"]
    key = key_pair[1]
    try:
        a, = network.launch(image_id, key_pair[0])
        res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                MaxCount=1, KeyName=key_pair[0], NetworkInterfaces=[{
                                    "DeviceIndex": 0, "SubnetId": second,
                                    "Groups": [network.group], "AssociatePublicIpAddress": True}])
        network.instances.append(res["Instances"][0]["InstanceId"])
        b = wait_state(ec2, network.instances[-1], "running")
        assert b["PrivateIpAddress"].startswith("10.78.1.")
        assert host_routes(server, network.vpc) == {"10.77.0.0/16", "10.78.0.0/16"}
        ssh(key, a["PublicIpAddress"], SERVE)
        ssh(key, b["PublicIpAddress"], SERVE)  # the host reaches the secondary block
        assert wait_for(lambda: ssh(key, b["PublicIpAddress"], fetch(
            a["PrivateIpAddress"])).stdout == "200", 10)
        assert wait_for(lambda: ssh(key, a["PublicIpAddress"], fetch(
            b["PrivateIpAddress"])).stdout == "200", 10)
        ec2.terminate_instances(InstanceIds=network.instances)
        for iid in network.instances:
            wait_state(ec2, iid, "terminated")
        network.instances = []
        ec2.disassociate_route_table(AssociationId=assoc)
        ec2.delete_subnet(SubnetId=second)
        ec2.disassociate_vpc_cidr_block(AssociationId=association)
        assert wait_for(lambda: host_routes(server, network.vpc) == {"10.77.0.0/16"}, 10)
    finally:
        if network.instances:
            ec2.terminate_instances(InstanceIds=network.instances)
            for iid in network.instances:
                wait_state(ec2, iid, "terminated")
            network.instances = []
        for row in ec2.describe_route_tables(RouteTableIds=[network.table])[
                "RouteTables"][0]["Associations"]:
            if row.get("SubnetId") == second:
                ec2.disassociate_route_table(AssociationId=row["RouteTableAssociationId"])
        if second in [n["SubnetId"] for n in ec2.describe_subnets(Filters=[
                {"Name": "vpc-id", "Values": [network.vpc]}])["Subnets"]]:
            ec2.delete_subnet(SubnetId=second)
        if association in [b["AssociationId"] for b in ec2.describe_vpcs(
                VpcIds=[network.vpc])["Vpcs"][0]["CidrBlockAssociationSet"]]:
            ec2.disassociate_vpc_cidr_block(AssociationId=association)
        network.delete()
