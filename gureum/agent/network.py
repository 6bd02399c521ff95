"""Host networking: every VPC is its own L2/L3 domain.

    host netns                         router netns <p>-vpc-...        instance netns
    public IP --DNAT+mark--> <p>r<N> ==veth== up0  [br0: subnet gateways,  ==veth== eth0
       (table ip <p>)        (route in table <mark>)   resolver, IMDS]

- A VPC's bridge and gateway addresses live in its own router netns, so VPCs with the
  same CIDR (in one account or many) never share a route, a neighbour table or a frame.
  The kernel here has no VRF; a netns per VPC is the isolation it offers.
- The host reaches instances only through their public addresses: an output-hook DNAT
  to the private address plus a mark naming the VPC; `ip rule fwmark` sends it into that
  VPC's uplink. Private ranges never enter the host's main routing table.
- IMDS (169.254.169.254) and the resolver (+2, 169.254.169.253) are addresses of the
  router; the control plane listens on them with sockets made inside the router netns,
  so the socket itself says which VPC is asking.

Everything carries the data directory's prefix, so cleanup can prove what it removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from gureum.agent import hostcmd, idmap, nft, procnet
from gureum.agent.contract import NetworkInterfaceSpec, PolicyRoute, VpcNetwork
from gureum.crashpoints import crashpoint
from gureum.errors import HostCommandFailed

NETNS_DIR = Path("/run/netns")
IMDS_ADDRESS = "169.254.169.254"
DNS_ADDRESS = "169.254.169.253"
# The uplink between the host and each router: the same pair in every router netns;
# on the host the address sits on each uplink as a /32, routes are per VPC table.
TRANSIT_HOST = "169.254.86.1"
TRANSIT_ROUTER = "169.254.86.2"
# The two ends of every peering link (requester, accepter), the same in every router.
PEERING_PAIR = ("169.254.87.1", "169.254.87.2")
RULE_PREF = 1000
# The VPC bridge's own MAC (its subnet gateways' address), set so that it never changes:
# a bridge left to itself takes the lowest MAC of its ports, so a new instance's (or
# interface's) port could change it and cut every instance off its gateway until their
# ARP entries expire. Instance MACs start 0e:31.
BRIDGE_MAC = "0e:30:00:00:00:01"
MARK_FLAG = 0x10000000
MARK_MASK = 0xFFFFF000  # flag + data directory hash; the low 12 bits name the VPC


@dataclass(frozen=True)
class NetworkPlan:
    prefix: str
    public_pool: str
    outbound: bool = False
    public_interface: str = ""  # where other machines reach public addresses
    publish_address: str = ""  # the host address LB listeners are published on

    @property
    def table(self) -> str:
        return self.prefix

    @property
    def mark_base(self) -> int:
        return MARK_FLAG | (int(self.prefix[2:6], 16) << 12)

    def mark(self, vpc: VpcNetwork) -> int:
        return self.mark_base | vpc.index

    def router(self, vpc_id: str) -> str:
        return f"{self.prefix}-{vpc_id}"

    def router_path(self, vpc_id: str) -> str:
        return str(NETNS_DIR / self.router(vpc_id))

    def uplink(self, vpc: VpcNetwork) -> str:
        return f"{self.prefix}r{vpc.index}"

    def netns(self, instance_id: str) -> str:
        return f"{self.prefix}-{instance_id}"

    def veth(self, slot: int) -> str:
        return f"{self.prefix}v{slot}"


def plan_for(config) -> NetworkPlan:  # noqa: ANN001  (gureum.config.Config)
    return NetworkPlan(config.prefix, config.public_pool, config.outbound,
                       config.public_interface, config.publish_address)


def gateway(subnet_cidr: str) -> str:
    return str(ipaddress.ip_network(subnet_cidr)[1])


def run_in(netns: str | None, cmd: list[str], input: str | None = None,
           check: bool = True) -> str:
    """Run a host command inside a netns (None: the host's). The command is forked from a
    thread that joined the netns, unlike `ip -n`/`ip netns exec`, which also make a mount
    namespace each time: that contends with instances' mounts when many launch at once."""
    if netns is None:
        return hostcmd.run(cmd, input=input, check=check)
    return idmap.in_netns(str(NETNS_DIR / netns),
                          lambda: hostcmd.run(cmd, input=input, check=check))


def _links(netns: str | None = None) -> list[dict]:
    return json.loads(run_in(netns, ["ip", "-j", "link", "show"]) or "[]")


def link_exists(name: str, netns: str | None = None) -> bool:
    return any(link["ifname"] == name for link in _links(netns))


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _apply_table(family: str, name: str, ruleset: str, netns: str | None = None) -> None:
    """Replace one nft table atomically (declare, delete, define in one transaction)."""
    script = f"table {family} {name} {{}}\ndelete table {family} {name}\n{ruleset}"
    run_in(netns, ["nft", "-f", "-"], input=script)


# -- the host side -------------------------------------------------------------------------
def host_ruleset(plan: NetworkPlan) -> str:
    t, pool, up = plan.table, plan.public_pool, f"{plan.prefix}r*"
    base, mask = plan.mark_base, MARK_MASK
    if plan.outbound:
        # The router only lets internet-routed subnets out; here they leave masqueraded,
        # and replies find their VPC again through the connection's mark.
        forward = f"""    iifname "{up}" oifname "{up}" drop
    iifname "{up}" ct mark set iifname map @uplink_marks accept
    oifname "{up}" ct state established,related accept
    oifname "{up}" drop"""
        masquerade = f'\n    iifname "{up}" oifname != "{up}" masquerade'
    else:
        forward = f"""    iifname "{up}" drop
    oifname "{up}" drop"""
        masquerade = ""
    pub, published = plan.public_interface, plan.publish_address
    exposed = exposed_forward = ""
    if published:
        # Listeners of internet-facing load balancers on the host's own address: the port
        # picks the load balancer (address . port) and its VPC (mark).
        exposed += f"""  map published {{ type inet_service : ipv4_addr . inet_service; }}
  map published_marks {{ type inet_service : mark; }}
  chain publish_mark {{
    type filter hook prerouting priority mangle; policy accept;
    ip daddr {published} meta mark set tcp dport map @published_marks
  }}
  chain publish_mark_output {{
    type route hook output priority mangle; policy accept;
    ip daddr {published} meta mark set tcp dport map @published_marks
  }}
  chain publish_nat {{
    type nat hook prerouting priority -100; policy accept;
    ip daddr {published} dnat ip addr . port to tcp dport map @published
  }}
  chain publish_nat_output {{
    type nat hook output priority -100; policy accept;
    ip daddr {published} dnat ip addr . port to tcp dport map @published
  }}
"""
        exposed_forward += f"""    ct status dnat ct original ip daddr {published} oifname "{up}" accept
    iifname "{up}" ct status dnat ct original ip daddr {published} accept
"""
    if pub:
        # Other machines reach public addresses arriving on the public interface: the
        # same mark and DNAT as the host's own connections, the client's address kept.
        exposed += f"""  chain route_prerouting {{
    type filter hook prerouting priority mangle; policy accept;
    iifname "{pub}" ip daddr {pool} meta mark set ip daddr map @public_marks
  }}
  chain nat_prerouting {{
    type nat hook prerouting priority -100; policy accept;
    iifname "{pub}" ip daddr {pool} dnat ip to ip daddr map @public_ips
  }}
"""
        exposed_forward += f"""    iifname "{pub}" oifname "{up}" ct status dnat accept
    iifname "{up}" oifname "{pub}" ct status dnat ct state established,related accept
"""
    return f"""table ip {t} {{
  map public_ips {{ type ipv4_addr : ipv4_addr; }}
  map public_marks {{ type ipv4_addr : mark; }}
  map uplink_marks {{ type ifname : mark; }}
  chain route_output {{
    # The mark picks the VPC's routing table once the DNAT below rewrites the address.
    type route hook output priority mangle; policy accept;
    ip daddr {pool} meta mark set ip daddr map @public_marks
  }}
  chain nat_output {{
    type nat hook output priority -100; policy accept;
    ip daddr {pool} dnat ip to ip daddr map @public_ips
  }}
{exposed}  chain mangle_prerouting {{
    type filter hook prerouting priority mangle; policy accept;
    ct direction reply ct mark and {mask:#x} == {base:#x} meta mark set ct mark
  }}
  chain nat_postrouting {{
    type nat hook postrouting priority 100; policy accept;
    oifname "{up}" ip saddr 127.0.0.0/8 masquerade{masquerade}
  }}
  chain guard_postrouting {{
    # In postrouting the out-interface is the one chosen after DNAT: what was meant for
    # a VPC never leaves by any other device.
    type filter hook postrouting priority 0; policy accept;
    meta mark and {mask:#x} == {base:#x} oifname != "{up}" drop
    ct direction original ct original ip daddr {pool} oifname != "{up}" oifname != "lo" drop
  }}
  chain guard_forward {{
    type filter hook forward priority 0; policy accept;
{exposed_forward}{forward}
  }}
  chain guard_input {{
    type filter hook input priority 0; policy accept;
    iifname "{up}" ct state established,related accept
    iifname "{up}" drop
  }}
  chain vxlan_guard {{
    # Per VPC segment: its VNI only from its peer hosts (agent/vxlan.py writes the rules).
    type filter hook input priority -10; policy accept;
  }}
}}
"""


def ensure_host_network(plan: NetworkPlan) -> bool:
    """The host's nft table and sysctls; idempotent. True when the table was (re)made
    empty, so per-instance and per-VPC elements must be re-added."""
    ruleset = host_ruleset(plan)
    version = hashlib.sha256(ruleset.encode()).hexdigest()[:12]
    ruleset = ruleset.replace(f"table ip {plan.table} {{\n",
                              f"table ip {plan.table} {{\n  comment \"{version}\"\n", 1)
    current = hostcmd.run(["nft", "list", "table", "ip", plan.table], check=False)
    # Public IPs on loopback reach instances through DNAT; the kernel must accept
    # 127/8 sources leaving on the uplinks (they are masqueraded right after).
    for path in ("/proc/sys/net/ipv4/conf/all/route_localnet", "/proc/sys/net/ipv4/ip_forward"):
        _write_sysctl(path, "1")
    if f'comment "{version}"' in current:
        return False
    _apply_table("ip", plan.table, ruleset)  # from an older gureum: replaced whole
    _remove_legacy_bridge(plan)
    return True


def _remove_legacy_bridge(plan: NetworkPlan) -> None:
    """gureum before per-VPC routers kept one host bridge and a bridge-family table."""
    if link_exists(f"{plan.prefix}br0"):
        hostcmd.run(["ip", "link", "del", f"{plan.prefix}br0"])
    if f"table bridge {plan.table}\n" in hostcmd.run(["nft", "list", "tables"], check=False) + "\n":
        hostcmd.run(["nft", "delete", "table", "bridge", plan.table])


def remove_host_network(plan: NetworkPlan) -> None:
    if f"table ip {plan.table}\n" in hostcmd.run(["nft", "list", "tables"], check=False) + "\n":
        hostcmd.run(["nft", "delete", "table", "ip", plan.table])
    _remove_legacy_bridge(plan)
    for rule in our_rules(plan):
        hostcmd.run(["ip", "rule", "del", "pref", str(RULE_PREF), "fwmark", rule], check=False)
    for table in sorted({route.split()[-1] for route in our_routes(plan)}):
        hostcmd.run(["ip", "route", "flush", "table", table], check=False)
    for address in our_proxy_neighbours(plan):
        hostcmd.run(["ip", "neigh", "del", "proxy", address, "dev", plan.public_interface],
                    check=False)


def our_proxy_neighbours(plan: NetworkPlan) -> list[str]:
    """Public addresses this host answers ARP for on the public interface."""
    if not plan.public_interface or not link_exists(plan.public_interface):
        return []
    out = hostcmd.run(["ip", "-j", "neigh", "show", "proxy", "dev", plan.public_interface],
                      check=False)
    pool = ipaddress.ip_network(plan.public_pool)
    return sorted(entry["dst"] for entry in json.loads(out or "[]")
                  if ipaddress.ip_address(entry["dst"]) in pool)


def our_rules(plan: NetworkPlan) -> list[str]:
    """The fwmarks of this data directory's policy-routing rules, as `ip rule` shows them."""
    rules = json.loads(hostcmd.run(["ip", "-j", "rule", "show"]) or "[]")
    out = []
    for rule in rules:
        mark = rule.get("fwmark")
        if mark and int(mark, 16) & MARK_MASK == plan.mark_base:
            out.append(mark)
    return out


def our_routes(plan: NetworkPlan) -> list[str]:
    """Routes in this data directory's per-VPC routing tables."""
    routes = json.loads(hostcmd.run(["ip", "-j", "route", "show", "table", "all"]) or "[]")
    return [f"{r.get('dst')} table {r['table']}" for r in routes
            if str(r.get("table", "")).isdigit() and int(r["table"]) & MARK_MASK == plan.mark_base]


# -- one VPC -------------------------------------------------------------------------------
def router_ruleset(plan: NetworkPlan, vpc: VpcNetwork) -> str:
    internet = ", ".join(vpc.internet_subnets)
    egress = (f'    iifname "br0" oifname "up0" ip saddr {{ {internet} }} accept\n'
              if plan.outbound and internet else "")
    # Other machines (public interface) reach the public subnets, as through an IGW;
    # security groups decide the rest.
    if (plan.public_interface or plan.publish_address) and internet:
        egress += f'    iifname "up0" oifname "br0" ip daddr {{ {internet} }} accept\n'

    peered = ""
    for link in vpc.peerings:
        name = peering_link(link.peering_id)
        for route in link.routes:
            peered += (f'    iifname "br0" oifname "{name}" '
                       f'ip saddr {{ {", ".join(route.sources)} }} '
                       f'ip daddr {route.destination} accept\n')
    if vpc.peerings:
        # Into a peering only what a subnet's route table sends there, replies included
        # (before the conntrack accept): a side without the route cannot answer, as on AWS.
        peered += '    iifname "br0" oifname "pcx*" drop\n'
    # NAT gateways: what their routes send out by the uplink leaves as the gateway's
    # address. Let through here whatever the operator switch says: the host's guards
    # are that switch (with outbound off its forward chain drops all uplink traffic).
    nat_rules = ""
    for route in sorted(vpc.policy_routes, key=_specific_first):
        if route.snat:
            nat_rules += (f'    oifname "up0" ip saddr {{ {", ".join(route.sources)} }} '
                          f'ip daddr {route.destination} snat ip to {route.snat}\n')
            egress += (f'    iifname "br0" oifname "up0" ip saddr {{ {", ".join(route.sources)} }} '
                       f'ip daddr {route.destination} accept\n')
    nat = (f"""  chain nat_postrouting {{
    type nat hook postrouting priority 100; policy accept;
{nat_rules}  }}
""" if nat_rules else "")
    inbound = "".join(
        f'    iifname "{peering_link(link.peering_id)}" oifname "br0" ip saddr {link.peer_cidr} '
        f'ip daddr {vpc.cidr} accept\n' for link in vpc.peerings)

    # IPv6 leaves no router here: what subnets route to a gateway reaches the uplink by
    # the router's IPv6 default route and is dropped (counted) at the uplink.
    ipv6_out = (f'    iifname "br0" oifname "up0" ip6 saddr {{ {", ".join(vpc.ipv6_egress_subnets)} }} '
                f'counter drop comment "ipv6-egress"\n' if vpc.ipv6_egress_subnets else "")
    return f"""table inet gureum {{
  chain input {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    iifname "br0" ip daddr {IMDS_ADDRESS} tcp dport 80 accept
    iifname "br0" ip daddr {{ {vpc.resolver}, {DNS_ADDRESS} }} udp dport 53 accept
    iifname "br0" icmp type echo-request accept
    iifname "br0" icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, echo-request }} accept
  }}
  chain forward {{
    type filter hook forward priority 0; policy drop;
{peered}{ipv6_out}    ct state established,related accept
    iifname "br0" oifname "br0" accept
    iifname "up0" oifname "br0" ip saddr {TRANSIT_HOST} accept
{inbound}{egress}  }}
{nat}}}
table bridge gureum {{
  # Anti-spoofing: a port may only send from its instance's address, so the metadata
  # service and DNS can trust the source address to name the caller.
  set port_addresses {{ type ifname . ipv4_addr; }}
  # Ports of interfaces whose SourceDestCheck is off: they may send (forward) from any
  # address, but never speak to the router's own services under another's address.
  set unchecked_ports {{ type ifname; }}
  # The same for IPv6 (link-local and unspecified sources are neighbour discovery's).
  set port_addresses6 {{ type ifname . ipv6_addr; }}
  chain guard_prerouting {{
    type filter hook prerouting priority -200; policy accept;
    iifname "{plan.prefix}v*" ether type ip iifname . ip saddr != @port_addresses iifname != @unchecked_ports drop
    iifname "{plan.prefix}v*" ether type ip iifname . ip saddr != @port_addresses ip daddr {{ {IMDS_ADDRESS}, {DNS_ADDRESS}, {vpc.resolver} }} drop
    iifname "{plan.prefix}v*" ether type ip iifname . ip saddr != @port_addresses meta mark set meta mark or {FORWARDED_MARK:#x}
    iifname "{plan.prefix}v*" ether type arp arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @port_addresses drop
    iifname "{plan.prefix}v*" ether type ip6 ip6 saddr != {{ ::, fe80::/10 }} iifname . ip6 saddr != @port_addresses6 iifname != @unchecked_ports drop
  }}
}}
"""


def ensure_vpc(plan: NetworkPlan, vpc: VpcNetwork) -> None:
    """The VPC's router netns, bridge, uplink, routes and rules; idempotent, and cheap
    when nothing changed. Guards go in before any address."""
    ns, uplink, mark = plan.router(vpc.vpc_id), plan.uplink(vpc), plan.mark(vpc)
    ns_path = plan.router_path(vpc.vpc_id)
    fresh = not Path(ns_path).exists()
    if fresh:
        hostcmd.run(["ip", "netns", "add", ns])
        idmap.write_in_netns(ns_path, {
            "/proc/sys/net/ipv6/conf/all/disable_ipv6": "1",
            "/proc/sys/net/ipv6/conf/default/disable_ipv6": "1",
            "/proc/sys/net/ipv4/ip_forward": "1",
            # Routes to an interface send packets back out by the bridge they came in
            # by: no ICMP redirects telling the sender to go round the next hop.
            "/proc/sys/net/ipv4/conf/all/send_redirects": "0",
            "/proc/sys/net/ipv4/conf/default/send_redirects": "0",
        })
    _ensure_router_rules(plan, vpc, ns, fresh)
    crashpoint("vpc.router_created")
    if _uplink_index(plan, vpc.vpc_id) != vpc.index:
        # Missing, or the name still held by a deleted VPC whose router is not yet
        # collected (indexes are reused): that VPC is gone, so its uplink may go too.
        if link_exists(uplink):
            hostcmd.run(["ip", "link", "del", uplink])
        if link_exists("up0", ns):
            run_in(ns, ["ip", "link", "del", "up0"])
        hostcmd.run(["ip", "link", "add", uplink, "type", "veth", "peer", "name", "up0",
                     "netns", ns])
        for knob in ("route_localnet", "rp_filter"):
            _write_sysctl(f"/proc/sys/net/ipv4/conf/{uplink}/{knob}",
                          "1" if knob == "route_localnet" else "0")
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{uplink}/disable_ipv6", "1")
        hostcmd.run(["ip", "addr", "add", f"{TRANSIT_HOST}/32", "dev", uplink])
        hostcmd.run(["ip", "link", "set", uplink, "up"])
        crashpoint("vpc.uplink_created")
    hostcmd.run(["nft", "add", "element", "ip", plan.table, "uplink_marks",
                 f"{{ {uplink} : {mark:#x} }}"], check=False)
    _ensure_router_links(vpc, ns)
    _ensure_peerings(plan, vpc, ns)
    _ensure_policy_routes(vpc, ns)
    _ensure_host_routes(vpc, uplink, mark)
    if f"{mark:#x}" not in our_rules(plan):
        hostcmd.run(["ip", "rule", "add", "pref", str(RULE_PREF), "fwmark", f"{mark:#x}",
                     "lookup", str(mark)])


def _ensure_host_routes(vpc: VpcNetwork, uplink: str, mark: int) -> None:
    """The VPC's routing table on the host: each of its CIDR blocks via its uplink (what
    public addresses are DNATed to finds the VPC there); blocks it no longer has go."""
    wanted = {vpc.cidr, *vpc.secondary_cidrs}
    out = hostcmd.run(["ip", "-j", "-4", "route", "show", "table", str(mark)], check=False)
    try:  # a table that does not exist yet: ip prints "[" alone, and an error
        have = {r["dst"] for r in json.loads(out or "[]")}
    except ValueError:
        have = set()
    if have == wanted:  # a remade uplink takes its routes with it: then they differ
        return
    batch = [f"route del {cidr} table {mark}" for cidr in sorted(have - wanted)]
    batch += [f"route replace {cidr} via {TRANSIT_ROUTER} dev {uplink} onlink table {mark}"
              for cidr in sorted(wanted)]
    hostcmd.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")


def _ensure_router_rules(plan: NetworkPlan, vpc: VpcNetwork, ns: str, fresh: bool) -> None:
    ruleset = router_ruleset(plan, vpc)
    version = hashlib.sha256(ruleset.encode()).hexdigest()[:12]
    ruleset = ruleset.replace("table inet gureum {\n",
                              f"table inet gureum {{\n  comment \"{version}\"\n", 1)
    if not fresh:
        current = run_in(ns, ["nft", "list", "table", "inet", "gureum"], check=False)
        if f'comment "{version}"' in current:
            return
    ports = [] if fresh else all_port_addresses(ns)
    unchecked = [] if fresh else _unchecked_ports(ns)
    _apply_table("inet", "gureum", ruleset.split("table bridge gureum")[0], ns)
    _apply_table("bridge", "gureum", "table bridge gureum" + ruleset.split("table bridge gureum")[1], ns)
    for port, address in ports:  # the bridge table was remade: let running ports send again
        add_port_address(plan, vpc.vpc_id, port, address)  # (either family)
    for port in unchecked:
        run_in(ns, _unchecked_cmd("add", port))


def _ensure_router_links(vpc: VpcNetwork, ns: str) -> None:
    links = {link["ifname"] for link in _links(ns)}
    batch = []
    if "br0" not in links:
        batch.append(f"link add br0 address {BRIDGE_MAC} type bridge")
    elif next(link.get("address") for link in _links(ns) if link["ifname"] == "br0") \
            != BRIDGE_MAC:  # a router made before the address was set: set it once
        batch.append(f"link set br0 address {BRIDGE_MAC}")
    addrs = json.loads(run_in(ns, ["ip", "-j", "addr", "show"]) or "[]")
    have = {(a["local"], a["prefixlen"]) for link in addrs for a in link.get("addr_info", [])
            if a.get("family") == "inet"}
    want = {(TRANSIT_ROUTER, 32, "up0"), (vpc.resolver, 32, "br0"), (IMDS_ADDRESS, 32, "br0"),
            (DNS_ADDRESS, 32, "br0")}
    want |= {(gateway(c), ipaddress.ip_network(c).prefixlen, "br0") for c in vpc.subnets}
    for address, prefixlen, dev in sorted(want):
        if (address, prefixlen) not in have:
            batch.append(f"addr add {address}/{prefixlen} dev {dev}")
    batch += ["link set lo up", "link set up0 up", "link set br0 up",
              f"route replace default via {TRANSIT_HOST} dev up0 onlink"]
    run_in(ns, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    ipv6_batch = _router_ipv6(vpc, ns, addrs)  # once br0 exists
    if ipv6_batch:
        run_in(ns, ["ip", "-batch", "-"], input="\n".join(ipv6_batch) + "\n")


def _router_ipv6(vpc: VpcNetwork, ns: str, addrs: list[dict]) -> list[str]:
    """`ip -batch` lines giving the bridge each IPv6 subnet's router address (its /64's
    ::1, as AWS's), and dropping those of subnets gone. IPv6 is turned on for the bridge
    alone (no DAD, no autoconfiguration) with forwarding, the first time it is needed:
    the uplink never speaks IPv6, and the forward chain lets IPv6 only from br0 to br0."""
    have = {(a["local"], a["prefixlen"]) for link in addrs if link["ifname"] == "br0"
            for a in link.get("addr_info", [])
            if a.get("family") == "inet6" and a.get("scope") == "global"}
    want = {(ipv6_router(c), 64) for c in vpc.ipv6_subnets}
    if want - have:
        idmap.write_in_netns(str(NETNS_DIR / ns), {
            **{f"/proc/sys/net/ipv6/conf/br0/{knob}": "0"
               for knob in ("accept_dad", "accept_ra", "autoconf")},
            "/proc/sys/net/ipv6/conf/br0/disable_ipv6": "0",
            # IPv6 forwards only with the netns-wide switch on (br0's alone is not enough).
            "/proc/sys/net/ipv6/conf/all/forwarding": "1",
        })
    batch = ([f"addr add {a}/{n} dev br0 nodad" for a, n in sorted(want - have)]
             + [f"addr del {a}/{n} dev br0" for a, n in sorted(have - want)])
    # Subnets routed to a gateway: an IPv6 default route to the uplink (IPv6 on for up0,
    # its host end keeps it off), where the forward chain drops what it carries.
    routed = any(r.get("dst") == "default" for r in json.loads(run_in(
        ns, ["ip", "-j", "-6", "route", "show"]) or "[]"))
    if vpc.ipv6_egress_subnets and not routed:
        idmap.write_in_netns(str(NETNS_DIR / ns), {
            **{f"/proc/sys/net/ipv6/conf/up0/{knob}": "0"
               for knob in ("accept_dad", "accept_ra", "autoconf")},
            "/proc/sys/net/ipv6/conf/up0/disable_ipv6": "0"})
        batch.append("route replace ::/0 dev up0")
    elif routed and not vpc.ipv6_egress_subnets:
        batch.append("route del ::/0 dev up0")
    return batch


def ipv6_router(subnet_ipv6_cidr: str) -> str:
    """A subnet's IPv6 router: the first address of its /64, as on AWS."""
    return str(ipaddress.ip_network(subnet_ipv6_cidr)[1])


FORWARDED_MARK = 0x1  # in a router: sent by an instance from an address not its own
POLICY_PREF = 2000  # + (32 - prefix length): longer destinations are looked at first
POLICY_TABLES = 3000  # the blackhole table; next hops get 3001 and on


def _specific_first(route: PolicyRoute) -> tuple[int, str]:
    return (-ipaddress.ip_network(route.destination).prefixlen, route.destination)


def policy_rules(vpc: VpcNetwork) -> tuple[set[tuple[int, str, str, str]], dict[str, str]]:
    """The router's wanted `ip rule`s (pref, from, to, table) and its tables' routes."""
    hops = sorted({r.via for r in vpc.policy_routes if r.via not in ("", "blackhole")})
    table_of = {"": "main", "blackhole": str(POLICY_TABLES)}
    table_of.update({hop: str(POLICY_TABLES + 1 + i) for i, hop in enumerate(hops)})
    routes = {table_of[hop]: f"default via {hop} dev br0" for hop in hops}
    if any(r.via == "blackhole" for r in vpc.policy_routes):
        routes[str(POLICY_TABLES)] = "blackhole default"
    rules = {(POLICY_PREF + 32 - ipaddress.ip_network(r.destination).prefixlen, source,
              r.destination, table_of[r.via])
             for r in vpc.policy_routes for source in r.sources}
    return rules, routes


def _ensure_policy_routes(vpc: VpcNetwork, ns: str) -> None:
    """Rules that send what some subnets' route tables say to a next hop inside the VPC
    (an interface) or to nothing (a blackhole); only for packets from the bridge, so the
    router's own answers keep the main table, and only for packets their sender sent from
    its own address: what an instance forwarded for another (marked by the bridge) would
    otherwise be sent back to it by the sender's subnet's rule, round and round; it takes
    the main table. Rewritten only when they differ."""
    rules, routes = policy_rules(vpc)
    have = set()
    for rule in json.loads(run_in(ns, ["ip", "-j", "-4", "rule", "show"]) or "[]"):
        if POLICY_PREF <= rule.get("priority", 0) <= POLICY_PREF + 32:
            have.add((rule["priority"], f"{rule.get('src', '0.0.0.0')}/{rule.get('srclen', 0)}",
                      f"{rule.get('dst', '0.0.0.0')}/{rule.get('dstlen', 0)}",
                      str(rule.get("table"))))
    tables = {}
    for route in json.loads(run_in(ns, ["ip", "-j", "-4", "route", "show", "table", "all"])
                            or "[]"):
        if str(route.get("table", "")).isdigit() and int(route["table"]) >= POLICY_TABLES:
            kind = "blackhole default" if route.get("type") == "blackhole" else \
                f"default via {route.get('gateway')} dev br0"
            tables[str(route["table"])] = kind
    if have == rules and tables == routes:
        return
    batch = [f"rule del pref {pref} from {src} to {dst} table {table}"
             for pref, src, dst, table in sorted(have - rules)]
    batch += [f"route flush table {table}" for table in sorted(set(tables) - set(routes))]
    batch += [f"route replace {route} table {table}" for table, route in sorted(routes.items())
              if tables.get(table) != route]
    batch += [f"rule add pref {pref} iif br0 fwmark 0/{FORWARDED_MARK:#x} from {src} to {dst} "
              f"table {table}" for pref, src, dst, table in sorted(rules - have)]
    run_in(ns, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")


def peering_link(peering_id: str) -> str:
    """The name, in both routers, of the veth pair an active peering is made of."""
    return "pcx" + hashlib.sha256(peering_id.encode()).hexdigest()[:8]


def _ensure_peerings(plan: NetworkPlan, vpc: VpcNetwork, ns: str) -> None:
    """A veth pair between this router and each peer's (once the peer has a router: its
    own first build links it then), each end addressed and routed to the other VPC;
    links of peerings no longer active go (deleting one end takes both)."""
    wanted = {peering_link(p.peering_id): p for p in vpc.peerings}
    for link in _links(ns):
        if link["ifname"].startswith("pcx") and link["ifname"] not in wanted:
            run_in(ns, ["ip", "link", "del", link["ifname"]], check=False)
    for name, peer in wanted.items():
        if not Path(plan.router_path(peer.peer_vpc_id)).exists():
            continue
        peer_ns = plan.router(peer.peer_vpc_id)
        if not link_exists(name, ns):
            hostcmd.run(["ip", "link", "add", "name", name, "netns", ns, "type", "veth",
                         "peer", "name", name, "netns", peer_ns])
        mine, theirs = PEERING_PAIR if peer.requester else PEERING_PAIR[::-1]
        for where, address, other, cidr in ((ns, mine, theirs, peer.peer_cidr),
                                            (peer_ns, theirs, mine, vpc.cidr)):
            run_in(where, ["ip", "-batch", "-"], input=(
                f"addr replace {address}/32 dev {name}\nlink set {name} up\n"
                f"route replace {cidr} via {other} dev {name} onlink\n"))


def _uplink_index(plan: NetworkPlan, vpc_id: str) -> int | None:
    """The index of a router's uplink, read back from the host end of its up0."""
    router = plan.router(vpc_id)
    if not Path(plan.router_path(vpc_id)).exists():
        return None
    for link in json.loads(run_in(router, ["ip", "-j", "link", "show", "up0"],
                                  check=False) or "[]"):
        for host_link in _links():
            if host_link.get("ifindex") == link.get("link_index") and \
                    host_link["ifname"].startswith(f"{plan.prefix}r"):
                return int(host_link["ifname"][len(plan.prefix) + 1:])
    return None


def remove_vpc(plan: NetworkPlan, vpc_id: str) -> None:
    """Idempotent: the router netns (taking its bridge and veths), the uplink, the
    routing table and rule of one VPC."""
    index = _uplink_index(plan, vpc_id)
    if index is not None:
        vpc = VpcNetwork(vpc_id, index, "0.0.0.0/32", ())
        mark = plan.mark(vpc)
        if f"{mark:#x}" in our_rules(plan):
            hostcmd.run(["ip", "rule", "del", "pref", str(RULE_PREF), "fwmark", f"{mark:#x}"])
        hostcmd.run(["ip", "route", "flush", "table", str(mark)], check=False)
        if link_exists(plan.uplink(vpc)):
            hostcmd.run(["ip", "link", "del", plan.uplink(vpc)])
        hostcmd.run(["nft", "delete", "element", "ip", plan.table, "uplink_marks",
                     f"{{ {plan.uplink(vpc)} }}"], check=False)
    if Path(plan.router_path(vpc_id)).exists():
        hostcmd.run(["ip", "netns", "del", plan.router(vpc_id)])


def vpc_routers(plan: NetworkPlan) -> list[str]:
    """VPC ids that have a router netns on this host."""
    start = f"{plan.prefix}-vpc-"
    if not NETNS_DIR.exists():
        return []
    return sorted(n.name[len(plan.prefix) + 1:] for n in NETNS_DIR.iterdir()
                  if n.name.startswith(start))


# -- one instance --------------------------------------------------------------------------
def mac_for(private_ip: str) -> str:
    octets = [int(o) for o in private_ip.split(".")]
    return "0e:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}".format(0x31, *octets)


def create_instance_netns(plan: NetworkPlan, vpc_id: str, instance_id: str, slot: int,
                          private_ip: str, subnet_cidr: str, pid: int | None = None) -> None:
    """A new netns, or with `pid` that process's own (made by the runtime), named."""
    ns = plan.netns(instance_id)
    if pid is None:
        hostcmd.run(["ip", "netns", "add", ns])
    else:
        hostcmd.run(["ip", "netns", "attach", ns, str(pid)])
    idmap.write_in_netns(str(NETNS_DIR / ns), {
        "/proc/sys/net/ipv6/conf/all/disable_ipv6": "1",
        "/proc/sys/net/ipv6/conf/default/disable_ipv6": "1",
        # Container root is not root of this netns's owner userns: let it bind :22.
        "/proc/sys/net/ipv4/ip_unprivileged_port_start": "0",
        "/proc/sys/net/ipv4/ping_group_range": "0 2147483647",
        # A new netns copies the host's forwarding (on): an instance forwards only with
        # SourceDestCheck off (`sync_interfaces`), as a guest kernel does by default.
        "/proc/sys/net/ipv4/ip_forward": "0",
    })
    plumb_instance(plan, vpc_id, instance_id, slot, private_ip, subnet_cidr, fresh=True)


def is_plumbed(plan: NetworkPlan, vpc_id: str, slot: int) -> bool:
    return Path(plan.router_path(vpc_id)).exists() and link_exists(plan.veth(slot),
                                                                   plan.router(vpc_id))


def plumb_instance(plan: NetworkPlan, vpc_id: str, instance_id: str, slot: int,
                   private_ip: str, subnet_cidr: str, fresh: bool = False) -> None:
    """Wire an instance's netns to its VPC bridge. Also heals a running instance whose
    router was lost (or that still hangs off a pre-router host bridge): its netns, and so
    its processes and sockets, stay; only the cable is replaced."""
    ns, veth, router = plan.netns(instance_id), plan.veth(slot), plan.router(vpc_id)
    prefixlen = ipaddress.ip_network(subnet_cidr).prefixlen
    if not fresh:  # an old cable: a host-side end from before per-VPC routers, or a dead one
        if link_exists(veth):
            hostcmd.run(["ip", "link", "del", veth])
        if link_exists("eth0", ns):
            run_in(ns, ["ip", "link", "del", "eth0"])

    def cable() -> None:  # from inside the router: one thread, the veth made on its bridge
        # Replacing an entry a client's early packet left INCOMPLETE delivers what was
        # queued at once (router_knows).
        hostcmd.run(["ip", "-batch", "-"], input=(
            f"link add {veth} up master br0 type veth peer name eth0 netns {ns}\n"
            f"{router_knows(private_ip)}\n"))
        nft.run(port_address_script(veth, private_ip))

    idmap.in_netns(str(NETNS_DIR / router), cable)
    # quickack: the instance acknowledges at once instead of after up to 40 ms. A client
    # whose next small message waits on that ACK (Nagle) otherwise stalls: an SSH login
    # stalls twice (~80 ms of its ~270 ms here). The cost is a few more ACK packets.
    subnet = ipaddress.ip_network(subnet_cidr)
    batch = "\n".join([
        f"link set eth0 address {mac_for(private_ip)}",
        f"addr add {private_ip}/{prefixlen} dev eth0 noprefixroute",
        "link set lo up",
        "link set eth0 up",
        f"route add {subnet} dev eth0 proto kernel scope link src {private_ip} quickack 1",
        f"route add default via {gateway(subnet_cidr)} quickack 1",
    ])
    run_in(ns, ["ip", "-batch", "-"], input=batch + "\n")


def router_knows(address: str) -> str:
    """An `ip -batch` line for inside a VPC router: the MAC of an instance interface's
    primary address, known at once (nud reachable; ARP takes over later). The bridge's MAC
    is fixed, so nothing else flushes an entry a client's early packet left INCOMPLETE,
    and every first connection would wait a second for the ARP retry."""
    return f"neigh replace {address} lladdr {mac_for(address)} dev br0 nud reachable"


PORT_SET6 = "port_addresses6"


def _port_set(address: str) -> str:
    return PORT_SET6 if ":" in address else "port_addresses"


def port_address_script(veth: str, private_ip: str) -> str:
    """The anti-spoof entry, for libnftables in the VPC router's netns: the bridge port
    `veth` may send from `private_ip` (IPv4 or IPv6)."""
    return f"add element bridge gureum {_port_set(private_ip)} {{ {veth} . {private_ip} }}"


def add_port_address(plan: NetworkPlan, vpc_id: str, veth: str, private_ip: str) -> None:
    nft.run_in(NETNS_DIR / plan.router(vpc_id), port_address_script(veth, private_ip))


def delete_instance_netns(plan: NetworkPlan, vpc_id: str, instance_id: str, slot: int) -> None:
    """Idempotent. Deleting the netns takes the veth pair with it."""
    ns, veth, router = plan.netns(instance_id), plan.veth(slot), plan.router(vpc_id)
    if (NETNS_DIR / ns).exists():
        hostcmd.run(["ip", "netns", "del", ns])
    if not Path(plan.router_path(vpc_id)).exists():
        return
    if link_exists(veth, router):
        # The kernel removes the peer of a deleted netns's veth asynchronously: it may
        # vanish between the check and the delete, which is the outcome we want anyway.
        run_in(router, ["ip", "link", "del", veth], check=False)
    for port, address in all_port_addresses(router):
        if port == veth or port.startswith(f"{veth}n"):  # eth0's port and its ethN ports
            _delete_port_address(router, port, address)
        if port.startswith(f"{veth}n") and link_exists(port, router):
            run_in(router, ["ip", "link", "del", port], check=False)
    for port in _unchecked_ports(router):  # a later instance in this slot is checked
        if port == veth or port.startswith(f"{veth}n"):
            run_in(router, _unchecked_cmd("delete", port), check=False)


def _unchecked_cmd(verb: str, port: str) -> list[str]:
    return ["nft", verb, "element", "bridge", "gureum", "unchecked_ports", f"{{ {port} }}"]


def _unchecked_ports(router: str) -> list[str]:
    out = run_in(router, ["nft", "-j", "list", "set", "bridge", "gureum", "unchecked_ports"],
                 check=False)
    ports: list[str] = []
    for item in json.loads(out)["nftables"] if out else []:
        ports += [e for e in item.get("set", {}).get("elem", []) or [] if isinstance(e, str)]
    return ports


def _delete_port_address(router: str, port: str, address: str) -> None:
    run_in(router, ["nft", "delete", "element", "bridge", "gureum", _port_set(address),
                    f"{{ {port} . {address} }}"], check=False)


# -- interfaces beyond eth0 (attached network interfaces) ----------------------------------
def interface_veth(plan: NetworkPlan, slot: int, device_index: int) -> str:
    """The router end of an instance's ethN: `<p>v<slot>n<N>` (at most 15 characters)."""
    return f"{plan.veth(slot)}n{device_index}"


def _table_for(device_index: int) -> int:
    # Inside the instance: the routing table of ethN's addresses (replies leave by ethN).
    return 100 + device_index


def interface_addresses(plan: NetworkPlan, instance_id: str) -> dict[str, list[str]]:
    ns = plan.netns(instance_id)
    if not (NETNS_DIR / ns).exists():
        return {}
    out = {}
    for link in json.loads(run_in(ns, ["ip", "-j", "addr", "show"]) or "[]"):
        if link["ifname"].startswith("eth"):  # listed even with no IPv4 address (half made)
            out[link["ifname"]] = [a["local"] for a in link.get("addr_info", [])
                                   if a.get("family") == "inet"]
    return out


def sync_interfaces(plan: NetworkPlan, vpc_id: str, instance_id: str, slot: int,
                    primary_ip: str, subnet_cidr: str, secondary_ips: tuple[str, ...],
                    interfaces: tuple[NetworkInterfaceSpec, ...],
                    source_dest_check: bool = True, ipv6_addresses: tuple[str, ...] = (),
                    subnet_ipv6_cidr: str = "") -> None:
    """Make a plumbed instance's interfaces the wanted ones (see the contract). Each ethN
    is a veth pair into the VPC bridge; its addresses route by table 100+N, chosen by
    source address, so what arrives on ethN is answered from ethN (its subnet's gateway)."""
    ns, router = plan.netns(instance_id), plan.router(vpc_id)
    # ARP answered only by the interface holding the address (eth0 would otherwise answer
    # for eth1's: the anti-spoof set drops that, leaving the peer guessing); loose reverse
    # path: a peer of eth0's subnet is reached back by eth1 for eth1's address.
    # SourceDestCheck off: the instance forwards for others (its root cannot turn that on:
    # it has no CAP_NET_ADMIN over this netns), and its port may send from any address.
    unchecked = {0} if not source_dest_check else set()
    unchecked |= {i.device_index for i in interfaces if not i.source_dest_check}
    idmap.write_in_netns(str(NETNS_DIR / ns), {
        "/proc/sys/net/ipv4/conf/all/arp_ignore": "1",
        "/proc/sys/net/ipv4/conf/all/arp_announce": "2",
        "/proc/sys/net/ipv4/conf/all/rp_filter": "2",
        "/proc/sys/net/ipv4/ip_forward": "1" if unchecked else "0",
        # A forwarding instance sends packets back out of the interface they came in by:
        # no ICMP redirects telling the sender to go round it.
        "/proc/sys/net/ipv4/conf/all/send_redirects": "0",
    })
    loose = set(_unchecked_ports(router))
    have = interface_addresses(plan, instance_id)
    ports = {}
    for port, address in _port_addresses(router):
        ports.setdefault(port, set()).add(address)
    wanted = {0: (subnet_cidr, (primary_ip, *secondary_ips))}
    wanted.update({i.device_index: (i.subnet_cidr, i.addresses) for i in interfaces})
    for device in have:
        index = int(device[3:]) if device[3:].isdigit() else -1
        if index > 0 and index not in wanted:
            _remove_interface(plan, ns, router, slot, index, ports)
    for index, (cidr, addresses) in sorted(wanted.items()):
        device = f"eth{index}"
        veth = plan.veth(slot) if index == 0 else interface_veth(plan, slot, index)
        if index > 0 and device not in have:
            _add_interface(plan, ns, router, veth, device, addresses[0])
            have[device] = []
        prefixlen = ipaddress.ip_network(cidr).prefixlen
        table = _table_for(index)
        batch = []
        for address in addresses:
            if address not in have[device]:
                batch.append(f"addr add {address}/{prefixlen} dev {device}")
            if address not in ports.get(veth, set()):
                add_port_address(plan, vpc_id, veth, address)
        for address in have[device]:
            if address not in addresses:
                batch.append(f"addr del {address}/{prefixlen} dev {device}")
        for address in ports.get(veth, set()) - set(addresses):  # stale, whatever left it
            _delete_port_address(router, veth, address)
        if batch:
            run_in(ns, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")
        if index > 0:
            _route_by_source(ns, device, cidr, addresses, table)
        if (index in unchecked) != (veth in loose):
            run_in(router, _unchecked_cmd("add" if index in unchecked else "delete", veth),
                   check=False)
    wanted6 = {0: (subnet_ipv6_cidr, ipv6_addresses, primary_ip)}
    wanted6.update({i.device_index: (i.subnet_ipv6_cidr, i.ipv6_addresses, i.addresses[0])
                    for i in interfaces})
    _sync_ipv6(plan, ns, router, slot, wanted6, bool(unchecked))


def _sync_ipv6(plan: NetworkPlan, ns: str, router: str, slot: int,
               wanted: dict[int, tuple[str, tuple[str, ...], str]], forwarding: bool) -> None:
    """Each ethN's IPv6 addresses (device index -> (its subnet's /64, addresses, its
    primary IPv4 address, which names its MAC)): static, without DAD, router
    advertisements or autoconfiguration; a default route via the subnet's router (::1),
    ethN's by source address in table 100+N; the bridge port may send from them and the
    router knows their MAC at once. IPv6 stays off on an interface that never had any."""
    have = _ipv6_addresses(ns)
    ports: dict[str, set[str]] = {}
    for port, address in _port_addresses(router, PORT_SET6):
        ports.setdefault(port, set()).add(address)
    for index, (cidr, addresses, primary) in sorted(wanted.items()):
        device = f"eth{index}"
        veth = plan.veth(slot) if index == 0 else interface_veth(plan, slot, index)
        current = have.get(device)
        if not addresses and not current:
            for address in ports.get(veth, set()):  # stale, whatever left it
                _delete_port_address(router, veth, address)
            continue
        if current is None:  # IPv6 still off on this interface
            idmap.write_in_netns(str(NETNS_DIR / ns), {
                **{f"/proc/sys/net/ipv6/conf/{device}/{knob}": "0"
                   for knob in ("accept_dad", "accept_ra", "autoconf")},
                f"/proc/sys/net/ipv6/conf/{device}/disable_ipv6": "0",
                "/proc/sys/net/ipv6/conf/all/forwarding": "1" if forwarding else "0",
            })
            current = []
        batch = [f"addr add {a}/64 dev {device} nodad" for a in addresses
                 if a not in current]
        batch += [f"addr del {a}/64 dev {device}" for a in current if a not in addresses]
        if addresses and cidr:
            router6 = ipv6_router(cidr)
            if index == 0:
                batch.append(f"route replace default via {router6} dev eth0 quickack 1")
            else:
                table = _table_for(index)
                batch += [f"route replace {cidr} dev {device} table {table}",
                          f"route replace default via {router6} dev {device} table {table}"]
                rules = json.loads(run_in(ns, ["ip", "-j", "-6", "rule", "show", "table",
                                               str(table)]) or "[]")
                batch += [f"rule del pref {r['priority']} table {table}" for r in rules]
                batch += [f"rule add from {a} table {table} pref {table}" for a in addresses]
        if batch:
            run_in(ns, ["ip", "-6", "-batch", "-"], input="\n".join(batch) + "\n")
        for address in addresses:
            if address not in ports.get(veth, set()):
                nft.run_in(NETNS_DIR / router, port_address_script(veth, address))
                run_in(router, ["ip", "-6", "neigh", "replace", address, "lladdr",
                                mac_for(primary), "dev", "br0", "nud", "reachable"],
                       check=False)
        for address in ports.get(veth, set()) - set(addresses):
            _delete_port_address(router, veth, address)
            run_in(router, ["ip", "-6", "neigh", "del", address, "dev", "br0"], check=False)


def _ipv6_addresses(ns: str) -> dict[str, list[str]]:
    """ethN -> its global IPv6 addresses, for interfaces with IPv6 on (absent: off)."""
    out: dict[str, list[str]] = {}
    for link in json.loads(run_in(ns, ["ip", "-j", "-6", "addr", "show"]) or "[]"):
        if link.get("ifname", "").startswith("eth"):
            out[link["ifname"]] = [a["local"] for a in link.get("addr_info", [])
                                   if a.get("scope") == "global"]
    return out


def _add_interface(plan: NetworkPlan, ns: str, router: str, veth: str, device: str,
                   primary: str) -> None:
    with contextlib.ExitStack() as undo:
        hostcmd.run(["ip", "link", "add", veth, "netns", router, "type", "veth", "peer",
                     "name", device, "netns", ns])
        undo.callback(run_in, ns, ["ip", "link", "del", device], check=False)  # both ends
        run_in(router, ["ip", "-batch", "-"], input=f"link set {veth} master br0 up\n"
               f"{router_knows(primary)}\n")
        run_in(ns, ["ip", "-batch", "-"], input=f"link set {device} address {mac_for(primary)}"
               f"\nlink set {device} up\n")
        undo.pop_all()


def _route_by_source(ns: str, device: str, cidr: str, addresses: tuple[str, ...],
                     table: int) -> None:
    """Table `table` holds ethN's subnet and a default via its gateway; one rule per
    address of ethN selects it. Rewritten whole: it is small."""
    rules = json.loads(run_in(ns, ["ip", "-j", "-4", "rule", "show", "table", str(table)])
                       or "[]")
    batch = [f"rule del pref {r['priority']} table {table}" for r in rules]
    batch += [f"route flush table {table}",
              f"route add {cidr} dev {device} table {table}",
              f"route add default via {gateway(cidr)} dev {device} table {table}"]
    batch += [f"rule add from {a} table {table} pref {table}" for a in addresses]
    run_in(ns, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")


def _remove_interface(plan: NetworkPlan, ns: str, router: str, slot: int, index: int,
                      ports: dict[str, set[str]]) -> None:
    veth, table = interface_veth(plan, slot, index), _table_for(index)
    run_in(ns, ["ip", "link", "del", f"eth{index}"], check=False)  # its peer goes with it
    rules = json.loads(run_in(ns, ["ip", "-j", "-4", "rule", "show", "table", str(table)])
                       or "[]")
    for rule in rules:
        run_in(ns, ["ip", "rule", "del", "pref", str(rule["priority"]), "table", str(table)],
               check=False)
    for rule in json.loads(run_in(ns, ["ip", "-j", "-6", "rule", "show", "table", str(table)])
                           or "[]"):
        run_in(ns, ["ip", "-6", "rule", "del", "pref", str(rule["priority"]), "table",
                    str(table)], check=False)
    for address in ports.get(veth, set()) | {
            a for port, a in _port_addresses(router, PORT_SET6) if port == veth}:
        _delete_port_address(router, veth, address)
    run_in(router, _unchecked_cmd("delete", veth), check=False)
    if link_exists(veth, router):
        run_in(router, ["ip", "link", "del", veth], check=False)


def all_port_addresses(router: str) -> list[tuple[str, str]]:
    """(port, address) of both anti-spoof sets, IPv4's and IPv6's, from one nft call."""
    out = run_in(router, ["nft", "-j", "list", "table", "bridge", "gureum"], check=False)
    return [(elem["concat"][0], elem["concat"][1])
            for item in (json.loads(out)["nftables"] if out else [])
            if item.get("set", {}).get("name") in ("port_addresses", PORT_SET6)
            for elem in item["set"].get("elem") or []]


def _port_addresses(router: str, name: str = "port_addresses") -> list[tuple[str, str]]:
    out = run_in(router, ["nft", "-j", "list", "set", "bridge", "gureum", name],
                 check=False)
    pairs = []
    for item in json.loads(out)["nftables"] if out else []:
        for elem in item.get("set", {}).get("elem", []) or []:
            port, address = elem["concat"]
            pairs.append((port, address))
    return pairs


# -- public addresses ----------------------------------------------------------------------
def map_public_ip(plan: NetworkPlan, public_ip: str, private_ip: str, mark: int) -> None:
    add = (f"add element ip {plan.table} public_marks {{ {public_ip} : {mark:#x} }}\n"
           f"add element ip {plan.table} public_ips {{ {public_ip} : {private_ip} }}\n")
    # Adding what is already there is a no-op and a new address (every launch) needs
    # nothing else: one nft call. Only an address mapped elsewhere fails (EEXIST, the
    # transaction changes nothing) and is replaced: its old entries deleted in the same
    # transaction, only those that exist (a failed delete costs nft ~20 ms).
    try:
        nft.run(add)
    except HostCommandFailed:
        nft.run(_unmap_script(plan, _public_maps(plan), public_ip) + add)
    if plan.public_interface:  # machines on the public link ask who has it: we do
        hostcmd.run(["ip", "neigh", "replace", "proxy", public_ip, "dev", plan.public_interface],
                    check=False)


def unmap_public_ip(plan: NetworkPlan, public_ip: str) -> None:
    script = _unmap_script(plan, _public_maps(plan), public_ip)
    if script:
        nft.run(script)
    if plan.public_interface:
        hostcmd.run(["ip", "neigh", "del", "proxy", public_ip, "dev", plan.public_interface],
                    check=False)


def _unmap_script(plan: NetworkPlan, maps: dict[str, dict[str, object]], public_ip: str) -> str:
    return "".join(f"delete element ip {plan.table} {name} {{ {public_ip} }}\n"
                   for name, elements in maps.items() if public_ip in elements)


def _public_maps(plan: NetworkPlan) -> dict[str, dict[str, object]]:
    maps: dict[str, dict[str, object]] = {"public_ips": {}, "public_marks": {}}
    out = hostcmd.run(["nft", "-j", "list", "table", "ip", plan.table], check=False)
    for item in json.loads(out)["nftables"] if out else []:
        entry = item.get("map")
        if entry and entry.get("name") in maps:
            for key, value in entry.get("elem", []) or []:
                maps[entry["name"]][key] = value
    return maps


def public_ip_mapping(plan: NetworkPlan) -> dict[str, tuple[str, int]]:
    """public -> (private, mark), as the host has it now."""
    maps = _public_maps(plan)
    return {public: (str(private), int(maps["public_marks"].get(public, 0)))  # type: ignore[call-overload]
            for public, private in maps["public_ips"].items()}


def set_published(plan: NetworkPlan, wanted: dict[int, tuple[str, int, int]]) -> None:
    """Make the host's published ports exactly `wanted`: port -> (LB address, its port,
    VPC mark), in one transaction."""
    if not plan.publish_address:
        return
    t = plan.table
    script = [f"flush map ip {t} published", f"flush map ip {t} published_marks"]
    for port, (address, target_port, mark) in sorted(wanted.items()):
        script.append(f"add element ip {t} published {{ {port} : {address} . {target_port} }}")
        script.append(f"add element ip {t} published_marks {{ {port} : {mark:#x} }}")
    hostcmd.run(["nft", "-f", "-"], input="\n".join(script) + "\n")


def port_in_use(address: str, port: int) -> bool:
    """Whether a host socket listens on `port` at `address` or at any address."""
    return procnet.listening(None, port, {address})
