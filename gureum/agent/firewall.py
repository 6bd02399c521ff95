"""Security groups in the kernel: an nftables table inside each instance's own netns.

The host writes it; the instance cannot change it (its root has no CAP_NET_ADMIN over a
netns the host owns). Stateful through conntrack: replies and established connections
pass, so replacing the ruleset never cuts a connection that stays allowed. The metadata
service is always reachable, as on EC2, at up to 1,024 packets per second together with
DNS (AWS's limit per interface for its link-local services).
"""

from __future__ import annotations

from gureum.agent import nft
from gureum.agent.contract import Firewall, FirewallRule
from gureum.agent.network import DNS_ADDRESS, IMDS_ADDRESS, NETNS_DIR
from gureum.errors import NetnsMissing

ANY = "0.0.0.0/0"
ANY_IPV6 = "::/0"
TABLE = "gureum_sg"
# AWS's limit on what one interface may send to the link-local services (IMDS, DNS): the
# agent answers them, so this bounds the host work one instance can cause there.
LINK_LOCAL_PPS = 1024
# Neighbour discovery is IPv6's ARP: it passes whatever the groups say (AWS's groups do
# not filter it either), before conntrack could call it invalid.
NEIGHBOUR_DISCOVERY = ("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
                       "nd-router-solicit, nd-router-advert } accept")


def _match(rule: FirewallRule) -> str:
    proto = rule.protocol
    if proto == "-1":
        return ""
    if proto in ("tcp", "udp"):
        if rule.from_port <= 0 and rule.to_port >= 65535:
            return f"meta l4proto {proto}"
        ports = str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}"
        return f"{proto} dport {ports}"
    if proto in ("icmp", "icmpv6"):
        if rule.from_port == -1:
            return "meta l4proto icmp" if proto == "icmp" else "meta l4proto ipv6-icmp"
        code = f" {proto} code {rule.to_port}" if rule.to_port != -1 else ""
        return f"{proto} type {rule.from_port}{code}"
    return f"meta l4proto {int(proto)}"


def _lines(rules: tuple[FirewallRule, ...], field: str, prefix: str = "",
           table_family: str = "inet") -> list[str]:
    """One accept line per rule; `prefix` narrows every line (e.g. to one address)."""
    out = []
    for rule in rules:
        for peer in _peers(rule.peers, field, table_family):
            out.append("    " + " ".join(part for part in (prefix, peer, _match(rule), "accept")
                                         if part))
    return out


def _peers(peers: tuple[str, ...], field: str, table_family: str = "inet") -> list[str]:
    """The address matches of a rule's peers, one per family it names: a rule's
    0.0.0.0/0 is all of IPv4 only and ::/0 all of IPv6 only, as on AWS. In an `ip`
    table (IPv4 only; nft refuses `meta nfproto` there) IPv6 peers match nothing and
    0.0.0.0/0 needs no match at all."""
    out = []
    for family, anything, net in (("ip", ANY, "ipv4"), ("ip6", ANY_IPV6, "ipv6")):
        if table_family == "ip" and family == "ip6":
            continue
        mine = sorted({p for p in peers if (":" in p) == (family == "ip6")})
        if anything in mine:
            out.append("" if table_family == "ip" else f"meta nfproto {net}")
        elif mine:
            out.append(f"{family} {field} {{ {', '.join(mine)} }}")
    return out


def ingress_guard(address: str, firewall: Firewall) -> list[str]:
    """Lines of a filter chain that let traffic to `address` in only as the firewall's
    ingress rules allow (replies and established flows always)."""
    target = f"ip daddr {address}"
    return ([f"    {target} ct state established,related accept"]
            + _lines(firewall.ingress, "saddr", target, table_family="ip")
            + [f"    {target} drop"])


def render(firewall: Firewall) -> str:
    """With attached interfaces, each interface's rules match only traffic in (iifname)
    or out (oifname) by it: security groups apply per interface, as on EC2."""
    if not firewall.interfaces:
        ingress = "\n".join(_lines(firewall.ingress, "saddr"))
        egress = "\n".join(_lines(firewall.egress, "daddr"))
    else:
        ingress = "\n".join(_lines(firewall.ingress, "saddr", 'iifname "eth0"') + [
            line for i in firewall.interfaces
            for line in _lines(i.ingress, "saddr", f'iifname "{i.device}"')])
        egress = "\n".join(_lines(firewall.egress, "daddr", 'oifname "eth0"') + [
            line for i in firewall.interfaces
            for line in _lines(i.egress, "daddr", f'oifname "{i.device}"')])
    resolvers = ", ".join(a for a in (firewall.resolver, DNS_ADDRESS) if a)
    # Declaring then deleting the table makes the replacement one atomic transaction.
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  chain ingress {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    {NEIGHBOUR_DISCOVERY}
    ct state invalid drop
{ingress}
  }}
  chain egress {{
    type filter hook output priority 0; policy drop;
    ip daddr {{ {IMDS_ADDRESS}, {resolvers} }} limit rate over {LINK_LOCAL_PPS}/second burst {LINK_LOCAL_PPS} packets drop
    ct state established,related accept
    oifname "lo" accept
    {NEIGHBOUR_DISCOVERY}
    ip daddr {IMDS_ADDRESS} tcp dport 80 accept
    ip daddr {{ {resolvers} }} udp dport 53 accept
{egress}
  }}
}}
"""


def apply(netns: str, firewall: Firewall) -> None:
    # In a thread inside the netns, through libnftables: no process at all.
    ruleset, path = render(firewall), NETNS_DIR / netns
    try:
        nft.run_in(path, ruleset)
    except FileNotFoundError as err:
        raise NetnsMissing(f"no network namespace {path}: the instance is not on this host") from err
