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
