"""The firewall's nftables text for both kinds of table it lands in: nft itself checks it
(`nft -c`: parsed and validated, nothing applied), so a rule nft refuses in one family
fails here rather than in a load balancer that never turns healthy."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gureum.agent import firewall
from gureum.agent.contract import Firewall, FirewallRule

RULES = (
    FirewallRule("tcp", 8080, 8080, ("0.0.0.0/0",)),
    FirewallRule("tcp", 22, 22, ("::/0",)),
    FirewallRule("udp", 53, 53, ("10.0.0.0/16", "fd00:ec2::/56")),
    FirewallRule("icmp", -1, -1, ("0.0.0.0/0", "::/0")),
    FirewallRule("icmpv6", 128, -1, ("::/0",)),
)
needs_nft = pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed")


def _check(ruleset: str) -> None:
    done = subprocess.run(["nft", "-c", "-f", "-"], input=ruleset, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, f"{done.stderr}\n{ruleset}"


def test_ingress_guard_in_an_ip_table_keeps_to_ipv4() -> None:
    lines = firewall.ingress_guard("10.0.0.9", Firewall(ingress=RULES, egress=()))
    text = "\n".join(lines)
    assert "nfproto" not in text and "ip6" not in text and "::" not in text
    # 0.0.0.0/0 needs no address match; ::/0 alone matches nothing in IPv4.
    assert "    ip daddr 10.0.0.9 tcp dport 8080 accept" in lines
    assert not any("dport 22" in line for line in lines)
    assert any("ip saddr { 10.0.0.0/16 } udp dport 53" in line for line in lines)


@needs_nft
def test_ingress_guard_is_valid_nft_in_an_ip_table() -> None:
    lines = firewall.ingress_guard("10.0.0.9", Firewall(ingress=RULES, egress=()))
    _check("table ip gureum_check {\n  chain guard {\n    type filter hook prerouting "
           "priority -150; policy accept;\n" + "\n".join(lines) + "\n  }\n}\n")


@needs_nft
def test_instance_firewall_is_valid_nft_with_both_families() -> None:
    text = firewall.render(Firewall(ingress=RULES, egress=RULES, resolver="10.0.0.2"))
    assert "meta nfproto ipv4" in text and "ip6 saddr { fd00:ec2::/56 }" in text
    _check(text)
