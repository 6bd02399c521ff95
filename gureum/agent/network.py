"""Host networking: one bridge for the default VPC, a netns + veth per instance, and one
nftables table per data directory (guards, isolation, public-IP DNAT).

Everything carries the data directory's prefix, so cleanup can prove what it removed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from gureum.agent import hostcmd, idmap
from gureum.errors import HostError

NETNS_DIR = Path("/run/netns")


IMDS_ADDRESS = "169.254.169.254"
DNS_ADDRESS = "169.254.169.253"


@dataclass(frozen=True)
class NetworkPlan:
    prefix: str
    vpc_cidr: str
    subnet_cidr: str
    public_pool: str
    imds_port: int
    dns_port: int = 8776

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def table(self) -> str:
        return self.prefix

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet_cidr)[1])

    @property
    def resolver(self) -> str:
        """The VPC's +2 address, where AWS puts the Amazon-provided DNS server."""
        return str(ipaddress.ip_network(self.vpc_cidr)[2])

    def netns(self, instance_id: str) -> str:
        return f"{self.prefix}-{instance_id}"

    def veth(self, slot: int) -> str:
        return f"{self.prefix}v{slot}"


def plan_for(config) -> NetworkPlan:  # noqa: ANN001  (gureum.config.Config)
    return NetworkPlan(config.prefix, config.vpc_cidr, config.subnet_cidr, config.public_pool,
                       config.imds_port, config.dns_port)


def _links() -> list[dict]:
    return json.loads(hostcmd.run(["ip", "-j", "link", "show"]) or "[]")


def link_exists(name: str) -> bool:
    return any(link["ifname"] == name for link in _links())


def ensure_host_network(plan: NetworkPlan) -> bool:
    """Bridge, sysctls and nft table; idempotent. Guards go in before any address.
    True when the nft tables were (re)made empty, so per-instance elements must be re-added."""
    _refuse_route_clash(plan)
    remade = _ensure_nft_table(plan)
    if not link_exists(plan.bridge):
        hostcmd.run(["ip", "link", "add", plan.bridge, "type", "bridge"])
    net = ipaddress.ip_network(plan.vpc_cidr)
    with open(f"/proc/sys/net/ipv6/conf/{plan.bridge}/disable_ipv6", "w") as f:
        f.write("1")
    addrs = hostcmd.run(["ip", "-j", "addr", "show", "dev", plan.bridge])
    for want in (f"{plan.gateway}/{net.prefixlen}", f"{plan.resolver}/32"):
        if f'"{want.split("/")[0]}"' not in addrs:
            hostcmd.run(["ip", "addr", "add", want, "dev", plan.bridge])
    hostcmd.run(["ip", "link", "set", plan.bridge, "up"])
    # Public IPs on loopback reach instances through DNAT; the kernel must accept
    # 127/8 sources leaving on the bridge (they are masqueraded right after).
    for path in ("/proc/sys/net/ipv4/conf/all/route_localnet",
                 f"/proc/sys/net/ipv4/conf/{plan.bridge}/route_localnet",
                 "/proc/sys/net/ipv4/ip_forward"):
        with open(path, "w") as f:
            f.write("1")
    return remade


def _refuse_route_clash(plan: NetworkPlan) -> None:
    """Another device already routing our VPC range (another data directory, or a crashed
    one's leftovers) would steal our packets: refuse to start rather than misroute."""
    routes = json.loads(hostcmd.run(["ip", "-j", "route", "show", "match", plan.vpc_cidr]) or "[]")
    for route in routes:
        if route.get("dst") == plan.vpc_cidr and route.get("dev") != plan.bridge:
            raise HostError(
                f"{plan.vpc_cidr} is already routed via {route.get('dev')}: another gureum data "
                "directory (or its leftovers: `gureum --data-dir DIR doctor --clean`) uses it; "
                "set GUREUM_VPC_CIDR to another range")


def _ensure_nft_table(plan: NetworkPlan) -> bool:
    t, br, vpc, pool = plan.table, plan.bridge, plan.vpc_cidr, plan.public_pool
    family_prefix = plan.prefix[:2]
    gw, imds = plan.gateway, plan.imds_port
    ruleset = f"""
table ip {t} {{
  map public_ips {{ type ipv4_addr : ipv4_addr; }}
  chain nat_prerouting {{
    type nat hook prerouting priority -100; policy accept;
    iifname "{br}" ip daddr {IMDS_ADDRESS} tcp dport 80 dnat to {gw}:{imds}
    iifname "{br}" ip daddr {{ {plan.resolver}, {DNS_ADDRESS} }} udp dport 53 dnat to {gw}:{plan.dns_port}
  }}
  chain nat_output {{
    type nat hook output priority -100; policy accept;
    ip daddr {pool} dnat ip to ip daddr map @public_ips
  }}
  chain nat_postrouting {{
    type nat hook postrouting priority 100; policy accept;
    oifname "{br}" ip saddr 127.0.0.0/8 masquerade
  }}
  chain guard_postrouting {{
    # In postrouting (not output) the out-interface is the one after DNAT rerouting.
    type filter hook postrouting priority 0; policy accept;
    ip daddr {vpc} oifname != "{br}" drop
  }}
  chain guard_forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{br}" oifname != "{family_prefix}*" drop
    oifname "{br}" iifname != "{family_prefix}*" drop
  }}
  chain guard_input {{
    type filter hook input priority 0; policy accept;
    iifname "{br}" ct state established,related accept
    iifname "{br}" ip daddr {gw} tcp dport {imds} ct status dnat accept
    iifname "{br}" ip daddr {gw} udp dport {plan.dns_port} ct status dnat accept
    iifname "{br}" drop
  }}
}}
table bridge {t} {{
  # Anti-spoofing: a port may only send from its instance's address, so the metadata
  # service can trust the source address to name the caller.
  set port_addresses {{ type ifname . ipv4_addr; }}
  chain guard_prerouting {{
    type filter hook prerouting priority -200; policy accept;
    iifname "{plan.prefix}v*" ether type ip iifname . ip saddr != @port_addresses drop
    iifname "{plan.prefix}v*" ether type arp arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @port_addresses drop
  }}
}}
"""
    version = hashlib.sha256(ruleset.encode()).hexdigest()[:12]
    ruleset = ruleset.replace(f"table ip {t} {{\n", f"table ip {t} {{\n  comment \"{version}\"\n", 1)
    existing = hostcmd.run(["nft", "list", "tables"], check=False) + "\n"
    current = hostcmd.run(["nft", "list", "table", "ip", t], check=False)
    if f"table bridge {t}\n" in existing and f'comment "{version}"' in current:
        return False
    # A table from an older gureum: replaced whole; callers re-add the elements.
    for family in ("ip", "bridge"):
        if f"table {family} {t}\n" in existing:
            hostcmd.run(["nft", "delete", "table", family, t])
    hostcmd.run(["nft", "-f", "-"], input=ruleset)
    return True


def remove_host_network(plan: NetworkPlan) -> None:
    if link_exists(plan.bridge):
        hostcmd.run(["ip", "link", "del", plan.bridge])
    existing = hostcmd.run(["nft", "list", "tables"], check=False) + "\n"
    for family in ("ip", "bridge"):
        if f"table {family} {plan.table}\n" in existing:
            hostcmd.run(["nft", "delete", "table", family, plan.table])


def mac_for(private_ip: str) -> str:
    octets = [int(o) for o in private_ip.split(".")]
    return "0e:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}".format(0x31, *octets)


def create_instance_netns(plan: NetworkPlan, instance_id: str, slot: int, private_ip: str) -> None:
    ns, veth = plan.netns(instance_id), plan.veth(slot)
    prefixlen = ipaddress.ip_network(plan.subnet_cidr).prefixlen
    hostcmd.run(["ip", "netns", "add", ns])
    hostcmd.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    add_port_address(plan, veth, private_ip)
    hostcmd.run(["ip", "link", "set", veth, "master", plan.bridge, "up"])
    idmap.write_in_netns(str(NETNS_DIR / ns), {
        "/proc/sys/net/ipv6/conf/all/disable_ipv6": "1",
        "/proc/sys/net/ipv6/conf/default/disable_ipv6": "1",
        # Container root is not root of this netns's owner userns: let it bind :22.
        "/proc/sys/net/ipv4/ip_unprivileged_port_start": "0",
        "/proc/sys/net/ipv4/ping_group_range": "0 2147483647",
    })
    batch = "\n".join([
        f"link set eth0 address {mac_for(private_ip)}",
        f"addr add {private_ip}/{prefixlen} dev eth0",
        "link set lo up",
        "link set eth0 up",
        f"route add default via {plan.gateway}",
    ])
    hostcmd.run(["ip", "-n", ns, "-batch", "-"], input=batch + "\n")


def add_port_address(plan: NetworkPlan, veth: str, private_ip: str) -> None:
    hostcmd.run(["nft", "add", "element", "bridge", plan.table, "port_addresses",
                 f"{{ {veth} . {private_ip} }}"])


def delete_instance_netns(plan: NetworkPlan, instance_id: str, slot: int) -> None:
    """Idempotent. Deleting the netns takes the veth pair with it."""
    ns, veth = plan.netns(instance_id), plan.veth(slot)
    if (NETNS_DIR / ns).exists():
        hostcmd.run(["ip", "netns", "del", ns])
    if link_exists(veth):
        hostcmd.run(["ip", "link", "del", veth])
    _forget_port(plan, veth)


def _forget_port(plan: NetworkPlan, veth: str) -> None:
    out = hostcmd.run(["nft", "-j", "list", "set", "bridge", plan.table, "port_addresses"],
                      check=False)
    for item in json.loads(out)["nftables"] if out else []:
        for elem in item.get("set", {}).get("elem", []) or []:
            port, address = elem["concat"]
            if port == veth:
                hostcmd.run(["nft", "delete", "element", "bridge", plan.table, "port_addresses",
                             f"{{ {port} . {address} }}"])

def map_public_ip(plan: NetworkPlan, public_ip: str, private_ip: str) -> None:
    unmap_public_ip(plan, public_ip)
    hostcmd.run(["nft", "add", "element", "ip", plan.table, "public_ips",
                 f"{{ {public_ip} : {private_ip} }}"])


def unmap_public_ip(plan: NetworkPlan, public_ip: str) -> None:
    hostcmd.run(["nft", "delete", "element", "ip", plan.table, "public_ips",
                 f"{{ {public_ip} }}"], check=False)


def public_ip_mapping(plan: NetworkPlan) -> dict[str, str]:
    out = hostcmd.run(["nft", "-j", "list", "map", "ip", plan.table, "public_ips"], check=False)
    if not out:
        return {}
    mapping = {}
    for item in json.loads(out)["nftables"]:
        for elem in item.get("map", {}).get("elem", []) or []:
            mapping[elem[0]] = elem[1]
    return mapping
