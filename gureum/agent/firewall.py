"""Security groups in the kernel: an nftables table inside each instance's own netns.

The host writes it; the instance cannot change it (its root has no CAP_NET_ADMIN over a
netns the host owns). Stateful through conntrack: replies and established connections
pass, so replacing the ruleset never cuts a connection that stays allowed. The metadata
service is always reachable, as on EC2, at up to 1,024 packets per second together with
DNS (AWS's limit per interface for its link-local services).
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

from gureum.agent import idmap, nft
from gureum.agent.contract import Firewall, FirewallRule
from gureum.agent.network import DNS_ADDRESS, IMDS_ADDRESS, NETNS_DIR
from gureum.errors import HostError, NetnsMissing

ANY = "0.0.0.0/0"
ANY_IPV6 = "::/0"
TABLE = "gureum_sg"
# Declaring then deleting the table makes the replacement one atomic transaction. The
# deletion costs ~10 ms in the kernel: a netns made just now has no table to replace.
REPLACING = f"table inet {TABLE}\ndelete table inet {TABLE}\n"
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


# A set of addresses: nft's element type and the addresses.
AddressSet = tuple[str, frozenset[str]]


@dataclass(frozen=True)
class Table:
    """An instance's firewall as nftables sees it. Rules whose peers are single addresses
    (a group's members, above all) match a named set of them, so when only members come
    or go, `sets` is all that differs and the sets' elements are all that changes:
    a group's new member touches each member's table with two elements, not a new table."""

    text: str  # the whole table, replacing what was there in one transaction
    shape: str  # `text` without the sets' elements
    sets: dict[str, AddressSet]


def _host(peer: str) -> str | None:
    """The address of a peer that is one address (a /32 or /128), or None."""
    address, _, length = peer.partition("/")
    if not length or length == ("128" if ":" in address else "32"):
        return address
    return None


class _Sets:
    """Builds a table's lines, naming a set per rule and family for address-only peers."""

    def __init__(self) -> None:
        self.sets: dict[str, AddressSet] = {}

    def lines(self, rules: tuple[FirewallRule, ...], field: str, prefix: str = "") -> list[str]:
        out = []
        for rule in rules:
            hosts = [_host(p) for p in rule.peers]
            if any(h is None for h in hosts):  # a CIDR: matched inline, as it rarely changes
                out += _lines((rule,), field, prefix)
                continue
            for family, kind in (("ip", "ipv4_addr"), ("ip6", "ipv6_addr")):
                name = f"peers{len(self.sets)}"
                self.sets[name] = (kind, frozenset(h for h in hosts if h and (":" in h) == (
                    family == "ip6")))
                out.append("    " + " ".join(part for part in (
                    prefix, f"{family} {field} @{name}", _match(rule), "accept") if part))
        return out

    def declarations(self, with_elements: bool) -> str:
        out = []
        for name, (kind, members) in self.sets.items():
            elements = f" elements = {{ {', '.join(sorted(members))} }};" \
                if with_elements and members else ""
            out.append(f"  set {name} {{ type {kind};{elements} }}")
        return "\n".join(out)


@functools.lru_cache(maxsize=64)
def table(firewall: Firewall) -> Table:
    """With attached interfaces, each interface's rules match only traffic in (iifname)
    or out (oifname) by it: security groups apply per interface, as on EC2. Instances of
    the same groups have equal firewalls: each value is rendered once (cached)."""
    sets = _Sets()
    if not firewall.interfaces:
        ingress = "\n".join(sets.lines(firewall.ingress, "saddr"))
        egress = "\n".join(sets.lines(firewall.egress, "daddr"))
    else:
        ingress = "\n".join(sets.lines(firewall.ingress, "saddr", 'iifname "eth0"') + [
            line for i in firewall.interfaces
            for line in sets.lines(i.ingress, "saddr", f'iifname "{i.device}"')])
        egress = "\n".join(sets.lines(firewall.egress, "daddr", 'oifname "eth0"') + [
            line for i in firewall.interfaces
            for line in sets.lines(i.egress, "daddr", f'oifname "{i.device}"')])
    resolvers = ", ".join(a for a in (firewall.resolver, DNS_ADDRESS) if a)
    chains = f"""  chain ingress {{
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
"""
    text = (f"{REPLACING}table inet {TABLE} {{\n"
            f"{sets.declarations(True)}\n{chains}}}\n")
    return Table(text, f"{sets.declarations(False)}\n{chains}", sets.sets)


def render(firewall: Firewall) -> str:
    """The nft script that replaces an instance's whole firewall table."""
    return table(firewall).text


def _changes(before: dict[str, AddressSet], after: dict[str, AddressSet]) -> str:
    """The nft script that turns `before`'s set elements into `after`'s (same names)."""
    lines = []
    for name, (_, members) in after.items():
        added, gone = members - before[name][1], before[name][1] - members
        if added:
            lines.append(f"add element inet {TABLE} {name} {{ {', '.join(sorted(added))} }}")
        if gone:
            lines.append(f"delete element inet {TABLE} {name} {{ {', '.join(sorted(gone))} }}")
    return "\n".join(lines) + "\n" if lines else ""


# netns name -> (its inode, the table last applied there): what the next apply changes.
_applied: dict[str, tuple[int, Table]] = {}
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _lock(netns: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(netns, threading.Lock())


def _apply_here(netns: str, wanted: Table, fresh: bool) -> None:
    """`wanted` in the netns the calling thread is in (named `netns`): when only set
    members differ from what this process applied there last, just those elements (one
    small transaction); otherwise the whole table."""
    path = NETNS_DIR / netns
    with _lock(netns):
        try:
            inode = os.stat(path).st_ino  # a netns made again under the same name differs
        except FileNotFoundError as err:
            raise _missing(path) from err
        known = _applied.pop(netns, None)  # unknown until this apply succeeds
        if known is not None and known[0] == inode and known[1].shape == wanted.shape:
            script = _changes(known[1].sets, wanted.sets)
        else:
            script = wanted.text.removeprefix(REPLACING) if fresh else wanted.text
        if script:
            nft.run(script)
        _applied[netns] = (inode, wanted)


def _missing(path: object) -> NetnsMissing:
    return NetnsMissing(f"no network namespace {path}: the instance is not on this host")


def apply(netns: str, firewall: Firewall, fresh: bool = False) -> None:
    """The instance's firewall, in its netns (`fresh`: the netns was made just now, so
    has no table to replace). In a thread inside the netns, through libnftables: no
    process."""
    wanted, path = table(firewall), NETNS_DIR / netns
    try:
        idmap.in_netns(str(path), lambda: _apply_here(netns, wanted, fresh))
    except FileNotFoundError as err:
        raise _missing(path) from err


def apply_many(firewalls: dict[str, Firewall]) -> dict[str, HostError]:
    """Each netns's firewall (netns name -> firewall), from one thread that visits them
    in turn: one security-group change rewrites every member's (a new member of a group
    of 200 is 200 writes). Returns the failures by netns; the rest were applied."""
    names = list(firewalls)
    wanted = {str(NETNS_DIR / name): (name, table(firewalls[name])) for name in names}
    results = idmap.in_each_netns(list(wanted), lambda path: _apply_here(*wanted[path], False))
    failed: dict[str, HostError] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, FileNotFoundError):
            failed[name] = _missing(NETNS_DIR / name)
        elif isinstance(result, HostError):
            failed[name] = result
        elif isinstance(result, Exception):
            failed[name] = HostError(f"firewall of {name} not applied: {result}")
    return failed


def forget(netns: str) -> None:
    """The netns is gone: nothing to remember about it."""
    with _guard:
        _locks.pop(netns, None)
        _applied.pop(netns, None)
