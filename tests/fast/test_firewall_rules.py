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


MEMBERS = FirewallRule("-1", -1, -1, ("10.0.0.5/32", "10.0.0.6", "fd00::5/128"))


@needs_nft
def test_address_peers_are_named_sets_and_only_members_differ() -> None:
    with_two = firewall.table(Firewall(ingress=(MEMBERS, *RULES), egress=RULES))
    assert "ip saddr @peers0 accept" in with_two.text and "ip6 saddr @peers1 accept" in with_two.text
    assert with_two.sets["peers0"] == ("ipv4_addr", frozenset({"10.0.0.5", "10.0.0.6"}))
    assert with_two.sets["peers1"] == ("ipv6_addr", frozenset({"fd00::5"}))
    assert "ip6 saddr { fd00:ec2::/56 }" in with_two.text  # CIDRs stay inline
    _check(with_two.text)
    joined = FirewallRule("-1", -1, -1, ("10.0.0.5", "10.0.0.7"))
    with_other = firewall.table(Firewall(ingress=(joined, *RULES), egress=RULES))
    assert with_other.shape == with_two.shape, "members only: the same table"
    changes = firewall._changes(with_two.sets, with_other.sets)
    assert changes.splitlines() == [
        "add element inet gureum_sg peers0 { 10.0.0.7 }",
        "delete element inet gureum_sg peers0 { 10.0.0.6 }",
        "delete element inet gureum_sg peers1 { fd00::5 }"]
    wider = FirewallRule("-1", -1, -1, ("10.0.0.0/24",))
    assert firewall.table(Firewall(ingress=(wider, *RULES), egress=RULES)).shape != with_two.shape
