"""The nft rulesets the agent writes, checked by nft itself (`nft -c`, nothing applied):
outbound traffic is gated by the operator's switch and by each subnet's routes."""

from __future__ import annotations

import subprocess

from gureum.agent.network import NetworkPlan, VpcNetwork, host_ruleset, router_ruleset

VPC = VpcNetwork("vpc-0123456789abcdef0", 7, "10.9.0.0/16", ("10.9.1.0/24", "10.9.2.0/24"),
                 internet_subnets=("10.9.1.0/24",))


def nft_accepts(ruleset: str) -> None:
    out = subprocess.run(["nft", "-c", "-f", "-"], input=ruleset, text=True, capture_output=True)
    assert out.returncode == 0, out.stderr


def test_router_lets_only_internet_subnets_out_and_only_when_allowed():
    closed = router_ruleset(NetworkPlan("grab12", "127.100.0.0/16", outbound=False), VPC)
    opened = router_ruleset(NetworkPlan("grab12", "127.100.0.0/16", outbound=True), VPC)
    for ruleset in (closed, opened):
        nft_accepts(ruleset)
    assert 'oifname "up0"' not in closed
    assert 'iifname "br0" oifname "up0" ip saddr { 10.9.1.0/24 } accept' in opened
    assert "10.9.2.0/24" not in opened


def test_host_forwards_and_masquerades_only_when_allowed():
    closed = host_ruleset(NetworkPlan("grab12", "127.100.0.0/16", outbound=False))
    opened = host_ruleset(NetworkPlan("grab12", "127.100.0.0/16", outbound=True))
    for ruleset in (closed, opened):
        nft_accepts(ruleset)
    assert "masquerade" in closed  # only loopback sources toward the uplinks
    assert 'iifname "grab12r*" oifname != "grab12r*" masquerade' in opened
    def forward(ruleset: str) -> str:
        return ruleset.split("chain guard_forward")[1].split("chain guard_input")[0]

    assert 'iifname "grab12r*" drop' in forward(closed)
    assert 'iifname "grab12r*" drop' not in forward(opened)
    assert 'iifname "grab12r*" oifname "grab12r*" drop' in forward(opened)  # never VPC to VPC
    # Marks: one 12-bit slot per VPC under the data directory's 16-bit hash.
    plan = NetworkPlan("grab12", "127.100.0.0/16")
    assert plan.mark(VPC) == 0x1AB12007


def test_resolver_forwards_only_for_callers_allowed_out():
    """Real sockets on loopback: an upstream that answers everything, and our resolver in
    front of it, forwarding for one caller and refusing for another."""
    import socket
    import threading

    from dnslib import QTYPE, RR, A, DNSRecord

    from gureum.agent.dns import DnsServer, host_resolvers

    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))

    def answer_everything() -> None:
        data, peer = upstream.recvfrom(4096)
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.add_answer(RR(str(request.q.qname), QTYPE.A, rdata=A("192.0.2.7"), ttl=5))
        upstream.sendto(reply.pack(), peer)

    threading.Thread(target=answer_everything, daemon=True).start()
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    server = DnsServer(front, lambda name, qtype, client: None,
                       may_forward=lambda client: client == "127.0.0.1",
                       upstreams=(upstream.getsockname(),))
    query = DNSRecord.question("example.org").pack()
    forwarded = DNSRecord.parse(server.answer(query, "127.0.0.1"))
    assert str(forwarded.rr[0].rdata) == "192.0.2.7"
    refused = DNSRecord.parse(server.answer(query, "10.0.0.9"))
    assert refused.header.rcode == 5 and not refused.rr  # REFUSED
    upstream.close()
    front.close()
    assert host_resolvers("/nonexistent") == ()
