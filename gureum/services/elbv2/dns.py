"""What load balancers' DNS names resolve to.

Inside a VPC (its resolver) a name resolves to the load balancer's address in the VPC,
internet-facing or not: public addresses live on the host's side and an instance cannot
reach them (no hairpin), a deliberate difference from AWS. Outside (gureum's public DNS)
an internet-facing name resolves to its public address and an internal one to its
private address, as AWS publishes both.
"""

from __future__ import annotations

from dnslib import QTYPE, RR, A

from gureum.agent.contract import DnsRecord
from gureum.services.elbv2.zones import APPS_ZONE, DNS_ZONE
from gureum.store.elbv2_models import LoadBalancer

TTL = 60


def zone(region: str) -> str:
    return f"{region}.{DNS_ZONE}"


def answer(name: str, qtype: str, region: str, load_balancers: list[LoadBalancer],
           inside_vpc: bool) -> list[RR] | None:
    """Answers for `name`; None when the name is outside the load balancers' zone."""
    if not (name == zone(region) or name.endswith("." + zone(region))):
        return None
    for lb in load_balancers:
        if lb.dns_name == name:
            address = lb.private_ip if inside_vpc or not lb.public_ip else lb.public_ip
            return [RR(name, QTYPE.A, rdata=A(address), ttl=TTL)] if qtype in ("A", "ANY") else []
    return []


def records(load_balancers: list[LoadBalancer]) -> list[DnsRecord]:
    """Their names as a VPC's resolver serves them: always the address in the VPC."""
    return [(lb.dns_name.lower(), "A", lb.private_ip) for lb in load_balancers]



def apps_zone(region: str) -> str:
    return f"{region}.{APPS_ZONE}"


def rule_hosts(conditions: list[dict]) -> set[str]:
    """The exact host names of a rule's host-header conditions (wildcards excluded)."""
    hosts: set[str] = set()
    for cond in conditions:
        if cond.get("Field") != "host-header":
            continue
        values = (cond.get("HostHeaderConfig") or {}).get("Values") or cond.get("Values") or []
        hosts |= {v.lower().rstrip(".") for v in values if "*" not in v and "?" not in v}
    return hosts


def app_answer(name: str, qtype: str, region: str,
               claims: list[tuple[LoadBalancer, list[dict]]]) -> list[RR] | None:
    """Answers for a name in the apps zone from (load balancer, rule conditions) pairs;
    None outside the zone. A name two load balancers claim (two accounts may write the
    same rule) resolves to nothing rather than to either."""
    if not name.endswith("." + apps_zone(region)):
        return None
    owners = {lb.arn: lb for lb, conditions in claims
              if lb.public_ip and name in rule_hosts(conditions)}
    if len(owners) != 1:
        return []
    lb = next(iter(owners.values()))
    return [RR(name, QTYPE.A, rdata=A(lb.public_ip), ttl=TTL)] if qtype in ("A", "ANY") else []
