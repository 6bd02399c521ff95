"""Network load balancers forward in their VPC's router, as AWS's do in its network: a
DNAT of (NLB address, listener port) to one of the healthy targets, chosen per
connection. Replies pass the router too (it is every subnet's gateway, and bridge
netfilter makes even same-subnet traffic cross its hooks), so they are translated back
and the target sees the client's own address. Draining targets get no new connections;
existing ones continue on their conntrack entries."""

from __future__ import annotations

from gureum.agent import firewall
from gureum.agent.contract import HealthReport, LoadBalancerSpec


def table_name(lb_id: str) -> str:
    return f"nlb_{lb_id}"


def stats_table(lb_id: str) -> str:
    """Its traffic counters: a table of their own, so that replacing the forwarding table
    (on every health change) never resets them."""
    return f"nlbstat_{lb_id}"


def counters_ruleset(spec: LoadBalancerSpec) -> str:
    """NewFlowCount (first packets of connections to a listener) and ProcessedBytes
    (every packet of those connections, both ways: replies carry the NLB as their
    connection's original destination). Named counters survive the rules' refresh."""
    name = stats_table(spec.lb_id)
    ports = ", ".join(str(f.port) for f in spec.frontends) or "0"
    declare = [f"table ip {name} {{", "  counter flows { }", "  counter traffic { }",
               "  chain count {",
               "    type filter hook prerouting priority -140; policy accept;", "  }", "}"]
    rules = [f"flush chain ip {name} count", f"table ip {name} {{", "  chain count {",
             f'    ct original ip daddr {spec.private_ip} counter name "traffic"',
             f"    ct state new ip daddr {spec.private_ip} tcp dport {{ {ports} }} "
             'counter name "flows"', "  }", "}"]
    return "\n".join(declare + rules) + "\n"


def parse_counters(nft_json: str) -> dict[str, float]:
    """`nft -j list counters table ...` -> NewFlowCount and ProcessedBytes."""
    import json

    out = {"NewFlowCount": 0.0, "ProcessedBytes": 0.0}
    for item in json.loads(nft_json or "{}").get("nftables", []):
        counter = item.get("counter")
        if counter and counter.get("name") == "flows":
            out["NewFlowCount"] = float(counter.get("packets", 0))
        elif counter and counter.get("name") == "traffic":
            out["ProcessedBytes"] = float(counter.get("bytes", 0))
    return out


def targets(spec: LoadBalancerSpec, health: HealthReport) -> dict[str, list[tuple[str, int]]]:
    """Backend -> servers that take new connections: the healthy ones, or all of them
    (but draining ones) when none is healthy yet (fail open, as AWS does)."""
    out = {}
    for backend in spec.backends:
        live = [s for s in backend.servers if not s.draining]
        report = health.get(backend.name, {})
        healthy = [s for s in live if report.get(s.name, ["", ""])[0] == "UP"
                   and report.get(s.name, ["", ""])[1] not in ("", "INI")]
        out[backend.name] = [(s.address, s.port) for s in (healthy or live)]
    return out


def ruleset(spec: LoadBalancerSpec, health: HealthReport) -> str:
    chosen = targets(spec, health)
    lines = []
    for frontend in spec.frontends:
        servers = chosen.get(frontend.default.backends[0][0], []) if frontend.default.backends \
            else []
        match = f"ip daddr {spec.private_ip} tcp dport {frontend.port}"
        if len(servers) == 1:
            address, port = servers[0]
            lines.append(f"    {match} dnat ip to {address}:{port}")
        elif servers:
            pairs = ", ".join(f"{i} : {a} . {p}" for i, (a, p) in enumerate(servers))
            lines.append(f"    {match} dnat ip addr . port to numgen inc mod {len(servers)} "
                         f"map {{ {pairs} }}")
    name = table_name(spec.lb_id)
    # The NLB's security groups judge its clients here, before the DNAT hides the
    # address they asked for (its own netns never sees their packets).
    guard = ""
    if spec.firewall is not None:
        guard = ("  chain guard {\n    type filter hook prerouting priority -150; "
                 "policy accept;\n" + "".join(line + "\n" for line in firewall.ingress_guard(
                     spec.private_ip, spec.firewall)) + "  }\n")
    # Declaring then deleting the table makes the replacement one atomic transaction.
    return (f"table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n" + guard
            + "  chain prerouting {\n"
            "    type nat hook prerouting priority dstnat; policy accept;\n"
            + "".join(line + "\n" for line in lines) + "  }\n}\n" + counters_ruleset(spec))


def active_flows(conntrack: str, address: str, ports: set[int]) -> int:
    """ActiveFlowCount: established TCP connections whose original destination is the
    NLB's address and one of its listeners (`nf_conntrack` of its VPC router)."""
    count = 0
    for line in conntrack.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[2] != "tcp" or fields[5] != "ESTABLISHED":
            continue
        original = dict(f.split("=", 1) for f in fields[6:10] if "=" in f)
        if original.get("dst") == address and original.get("dport", "").isdigit() \
                and int(original["dport"]) in ports:
            count += 1
    return count
