"""gureum's public DNS (UDP and TCP) and the VPC resolver answer load balancers' names."""

from __future__ import annotations

import socket
import struct

from dnslib import QTYPE, RCODE, DNSRecord

from gureum.agent.vpc_services import dns_answer
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state


def ask(fast: FastCloud, name: str, tcp: bool = False) -> DNSRecord:
    host, _, port = fast.config.dns_listen.rpartition(":")
    query = DNSRecord.question(name).pack()
    if tcp:
        with socket.create_connection((host, int(port)), timeout=3) as sock:
            sock.sendall(struct.pack("!H", len(query)) + query)
            size = struct.unpack("!H", sock.recv(2))[0]
            data = b""
            while len(data) < size:
                data += sock.recv(size - len(data))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(query, (host, int(port)))
            data = sock.recv(4096)
    return DNSRecord.parse(data)


def test_load_balancer_and_instance_names(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    elb = fast.client("elbv2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    public = elb.create_load_balancer(Name="dns-pub", Subnets=[subnet])["LoadBalancers"][0]
    internal = elb.create_load_balancer(Name="dns-int", Subnets=[subnet], Scheme="internal")[
        "LoadBalancers"][0]
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    try:
        address = public["AvailabilityZones"][0]["LoadBalancerAddresses"][0]
        for tcp in (False, True):
            reply = ask(fast, public["DNSName"], tcp=tcp)
            assert reply.header.aa == 1
            assert [str(rr.rdata) for rr in reply.rr] == [address["IpAddress"]]
        private = internal["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
        assert internal["DNSName"].startswith("internal-dns-int-")
        assert [str(rr.rdata) for rr in ask(fast, internal["DNSName"]).rr] == [private]
        assert [str(rr.rdata) for rr in ask(fast, inst["PublicDnsName"]).rr] == \
            [inst["PublicIpAddress"]]
        assert ask(fast, "nobody-1.gureum-1.elb.gureum.internal").header.rcode == RCODE.NXDOMAIN
        assert ask(fast, "example.com").header.rcode == RCODE.REFUSED, "never recursive"
        # Inside the VPC, the resolver gives the load balancer's address in the VPC.
        def inside() -> list[str]:
            answers = dns_answer(fast.agent.served.get(inst["VpcId"]), public["DNSName"], "A",
                                 inst["PrivateIpAddress"])
            return [str(rr.rdata) for rr in answers or []]

        assert wait_for(lambda: inside() == [address["PrivateIPv4Address"]], 5), inside()
        assert ask(fast, public["DNSName"]).q.qtype == QTYPE.A
    finally:
        elb.delete_load_balancer(LoadBalancerArn=public["LoadBalancerArn"])
        elb.delete_load_balancer(LoadBalancerArn=internal["LoadBalancerArn"])
        ec2.terminate_instances(InstanceIds=[iid])


def test_host_rule_names_in_the_apps_zone_resolve_to_their_load_balancer(fast: FastCloud,
                                                                         ec2) -> None:  # noqa: ANN001
    elb = fast.client("elbv2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lb = elb.create_load_balancer(Name="dns-apps", Subnets=[subnet])["LoadBalancers"][0]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=8099,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])[
        "Listeners"][0]["ListenerArn"]
    host = "shop.gureum-1.apps.gureum.internal"
    rule = elb.create_rule(ListenerArn=listener, Priority=1, Conditions=[
        {"Field": "host-header", "HostHeaderConfig": {"Values": [host.upper(), "*.x.com"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}])[
        "Rules"][0]["RuleArn"]
    try:
        address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
        assert [str(rr.rdata) for rr in ask(fast, host).rr] == [address]
        assert ask(fast, "other.gureum-1.apps.gureum.internal").header.rcode == RCODE.NXDOMAIN
        elb.delete_rule(RuleArn=rule)
        assert ask(fast, host).header.rcode == RCODE.NXDOMAIN
    finally:
        elb.delete_listener(ListenerArn=listener)
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
