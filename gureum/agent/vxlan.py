"""A VPC's VXLAN segment on one host: how instances of one VPC on different hosts share
its L2 domain.

    router netns <p>-vpc-...                         host netns
    br0 -- <p>v<slot> (local instances)              UDP socket on the tunnel port
        -- <p>vx<index> (vxlan, VNI of the VPC) ====> to each peer host's underlay address

- The device is made inside the router netns by `ip link add ... netns <router>`, so its
  UDP socket stays in the host's netns (the underlay: the address the host registered)
  while its frames enter the VPC's own bridge. Two VPCs, even with the same CIDR, are two
  VNIs on two bridges: they never share a frame.
- `nolearning` and no all-zeros entry: the device floods nothing and sends no multicast.
  Every remote MAC is a permanent forwarding entry (`bridge fdb`, dst = the peer host),
  every remote address a permanent neighbour entry on the device, and `proxy` makes the
  device answer ARP from them, so a broadcast never leaves the host.
- The port's name starts `<p>v`, like instance ports, so the bridge's anti-spoof rule
  covers it too: frames from the tunnel may only carry the remote interfaces' addresses
  (in `port_addresses`, as for a local port). What the tunnel brings was already checked
  by the sending host's own port rule.
- The host's `vxlan_guard` chain drops, per VNI, tunnel packets from any address but the
  segment's peer hosts (an nft raw-payload match on the VXLAN header's VNI; one rule per
  VPC, named by its comment, so another cloud's VNIs on the same port are left alone).
- IPv6 rides the same segment: a peer's IPv6 addresses are neighbour entries and
  anti-spoof entries (`port_addresses6`) like its IPv4 ones; the device has IPv6 on only
  for its neighbour table (no address of its own).
- The instances' MTU stays 1500: a bridged frame too big for the tunnel gets an ICMP
  "fragmentation needed" from the vxlan device itself (the kernel's bridged PMTU
  discovery), so TCP settles on 1450 across hosts without touching the guests.
"""

from __future__ import annotations

import contextlib
import json
import logging

from gureum.agent import hostcmd, idmap
from gureum.agent.contract import VpcNetwork, VxlanSegment
from gureum.agent.network import (
    NETNS_DIR,
    NetworkPlan,
    _delete_port_address,
    _links,
    add_port_address,
    all_port_addresses,
    run_in,
)

log = logging.getLogger("gureum.vxlan")
GUARD_CHAIN = "vxlan_guard"


def device(plan: NetworkPlan, vpc: VpcNetwork) -> str:
    return f"{plan.prefix}vx{vpc.index}"


def sync(plan: NetworkPlan, vpc: VpcNetwork, segment: VxlanSegment) -> None:
    """Make the router's segment exactly `segment` (idempotent; only differences are
    written). The router must exist."""
    router, name = plan.router(vpc.vpc_id), device(plan, vpc)
    current = _device_info(router, name)
    if not segment.peers:
        if current is not None:
            run_in(router, ["ip", "link", "del", name], check=False)
            _forget_port(router, name)
        return
    if current is not None and current != (segment.vni, segment.port, segment.local_address,
                                           True):
        # another VNI, port or underlay address, or one made before IPv6 rode segments
        run_in(router, ["ip", "link", "del", name])
        _forget_port(router, name)
        current = None
    if current is None:
        _create(plan, router, name, segment)
    _sync_forwarding(router, name, segment)
    _sync_neighbours(router, name, segment)
    _sync_port_addresses(plan, vpc, router, name, segment)


def _create(plan: NetworkPlan, router: str, name: str, segment: VxlanSegment) -> None:
    with contextlib.ExitStack() as undo:
        hostcmd.run(["ip", "link", "add", name, "netns", router, "type", "vxlan",
                     "id", str(segment.vni), "local", segment.local_address,
                     "dstport", str(segment.port), "nolearning", "proxy"])
        undo.callback(run_in, router, ["ip", "link", "del", name], check=False)
        # IPv6 on, for its neighbour table (the proxy answers neighbour solicitations for
        # remote IPv6 addresses from it), but with no address of its own: no link-local
        # address, no DAD, no router solicitations or autoconfiguration.
        run_in(router, ["ip", "link", "set", name, "addrgenmode", "none"])
        idmap.write_in_netns(str(NETNS_DIR / router), {
            **{f"/proc/sys/net/ipv6/conf/{name}/{knob}": "0"
               for knob in ("accept_dad", "accept_ra", "autoconf")},
            f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6": "0"})
        run_in(router, ["ip", "link", "set", name, "master", "br0", "up"])
        undo.pop_all()


def _device_info(router: str, name: str) -> tuple[int, int, str, bool] | None:
    """(VNI, port, local address, made as today: no IPv6 address generation) of the
    router's vxlan device, None when absent."""
    out = run_in(router, ["ip", "-j", "-d", "link", "show", "dev", name], check=False)
    for link in json.loads(out or "[]"):
        data = link.get("linkinfo", {}).get("info_data", {})
        return (int(data.get("id", -1)), int(data.get("port", -1)), str(data.get("local", "")),
                link.get("inet6_addr_gen_mode", "none") == "none")
    return None


def _sync_forwarding(router: str, name: str, segment: VxlanSegment) -> None:
    out = run_in(router, ["bridge", "-j", "fdb", "show", "dev", name], check=False)
    have = {(e["mac"], e["dst"]) for e in json.loads(out or "[]") if e.get("dst")}
    want = {(p.mac, p.host_address) for p in segment.peers}
    batch = [f"fdb del {mac} dev {name} dst {dst} self" for mac, dst in sorted(have - want)]
    # replace: a MAC that moved to another host has one destination again
    batch += [f"fdb replace {mac} dev {name} dst {dst} self permanent"
              for mac, dst in sorted(want - have)]
    if batch:
        run_in(router, ["bridge", "-batch", "-"], input="\n".join(batch) + "\n")


def _sync_neighbours(router: str, name: str, segment: VxlanSegment) -> None:
    out = run_in(router, ["ip", "-j", "neigh", "show", "dev", name], check=False)  # both families
    have = {(e["dst"], e.get("lladdr", "")) for e in json.loads(out or "[]")}
    want = {(address, p.mac) for p in segment.peers for address in p.addresses}
    batch = [f"neigh del {address} dev {name}" for address, _ in sorted(have - want)
             if address not in {a for a, _ in want}]
    batch += [f"neigh replace {address} lladdr {mac} dev {name} nud permanent"
              for address, mac in sorted(want - have)]
    if batch:
        run_in(router, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")


def _sync_port_addresses(plan: NetworkPlan, vpc: VpcNetwork, router: str, name: str,
                         segment: VxlanSegment) -> None:
    have = {address for port, address in all_port_addresses(router) if port == name}
    want = {address for p in segment.peers for address in p.addresses}
    for address in sorted(want - have):
        add_port_address(plan, vpc.vpc_id, name, address)
    for address in sorted(have - want):
        _delete_port_address(router, name, address)


def _forget_port(router: str, name: str) -> None:
    for port, address in all_port_addresses(router):
        if port == name:
            _delete_port_address(router, port, address)


def devices(plan: NetworkPlan) -> list[str]:
    """`<router netns>/<device>` of every vxlan device in this data directory's routers
    (and any left in the host's netns)."""
    found = [link["ifname"] for link in _links() if link["ifname"].startswith(f"{plan.prefix}vx")]
    if NETNS_DIR.exists():
        for ns in sorted(NETNS_DIR.iterdir()):
            if ns.name.startswith(f"{plan.prefix}-vpc-"):
                out = run_in(ns.name, ["ip", "-j", "link", "show", "type", "vxlan"], check=False)
                found += [f"{ns.name}/{link['ifname']}" for link in json.loads(out or "[]")]
    return found


def guard_rule(plan: NetworkPlan, vpc_id: str, segment: VxlanSegment) -> str:
    """The host rule letting the segment's VNI in from its peer hosts only."""
    hosts = segment.remote_hosts
    peers = hosts[0] if len(hosts) == 1 else "{ " + ", ".join(hosts) + " }"
    return (f"add rule ip {plan.table} {GUARD_CHAIN} udp dport {segment.port} "
            f"@th,96,24 {segment.vni:#x} ip saddr != {peers} drop comment \"{vpc_id}\"")


def apply_guard(plan: NetworkPlan, vpc_id: str, segment: VxlanSegment) -> None:
    """Replace the VPC's rule in the host's guard chain (none: no peers), in one
    transaction; other VPCs' rules are left as they are (found by their comment)."""
    out = hostcmd.run(["nft", "-j", "-a", "list", "chain", "ip", plan.table, GUARD_CHAIN],
                      check=False)
    script = [f"delete rule ip {plan.table} {GUARD_CHAIN} handle {item['rule']['handle']}"
              for item in (json.loads(out)["nftables"] if out else [])
              if item.get("rule", {}).get("comment") == vpc_id]
    if segment.peers:
        script.append(guard_rule(plan, vpc_id, segment))
    if script:
        hostcmd.run(["nft", "-f", "-"], input="\n".join(script) + "\n")
