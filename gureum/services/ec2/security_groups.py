"""Security groups: rule validation, the default group, and what each instance's
firewall must say (referenced groups resolved to their members' addresses)."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import InterfaceFirewall
from gureum.agent.firewall import Firewall, FirewallRule
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.store import models

LIVE_STATES = ("pending", "running", "stopping")
PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1", "-1": "-1",
                  "tcp": "tcp", "udp": "udp", "icmp": "icmp", "58": "icmpv6",
                  "icmpv6": "icmpv6"}
ANY_IPV6 = "::/0"


def is_ipv6(cidr: str | None) -> bool:
    return cidr is not None and ":" in cidr
MAX_RULES = 60


@dataclass(frozen=True)
class RuleSpec:
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    ref_group_id: str | None
    description: str
    prefix_list_id: str | None = None

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.protocol, self.from_port, self.to_port, self.cidr, self.ref_group_id,
                self.prefix_list_id)


def identity_of(rule: models.SecurityGroupRule) -> tuple[Any, ...]:
    """A stored rule's identity, comparable with `RuleSpec.identity`."""
    return (rule.protocol, rule.from_port, rule.to_port, rule.cidr, rule.ref_group_id,
            rule.prefix_list_id)


def default_group(session: Session, account_id: str, vpc_id: str, group_id: str,
                  quick_start: bool = True) -> models.SecurityGroup:
    """A VPC's default group, made with it: members talk to each other, all egress is
    allowed and, in the default VPC only (`quick_start`), SSH is open so the quick start's
    `ssh` works (revoke it to close)."""
    group = session.get(models.SecurityGroup, group_id)
    if group is not None:
        return group
    group = models.SecurityGroup(group_id=group_id, account_id=account_id, vpc_id=vpc_id,
                                 name="default", description="default VPC security group")
    session.add(group)
    session.flush()
    rules = [(RuleSpec("-1", -1, -1, None, group_id, ""), False),
             (RuleSpec("-1", -1, -1, "0.0.0.0/0", None, ""), True)]
    if quick_start:
        rules.append((RuleSpec("tcp", 22, 22, "0.0.0.0/0", None,
                               "gureum: SSH for the quick start"), False))
    for spec, egress in rules:
        add_rule(session, account_id, group_id, spec, egress)
    return group


def allow_ipv6_egress(session: Session, account_id: str, group_id: str) -> None:
    """The default group of a VPC with an IPv6 block allows all IPv6 egress, as AWS adds
    that rule to it (new groups get the IPv4 rule only)."""
    have = session.scalar(select(models.SecurityGroupRule.rule_id).where(
        models.SecurityGroupRule.group_id == group_id,
        models.SecurityGroupRule.is_egress.is_(True),
        models.SecurityGroupRule.protocol == "-1",
        models.SecurityGroupRule.cidr == ANY_IPV6).limit(1))
    if have is None:
        add_rule(session, account_id, group_id, RuleSpec("-1", -1, -1, ANY_IPV6, None, ""), True)


def add_rule(session: Session, account_id: str, group_id: str, spec: RuleSpec,
             egress: bool) -> models.SecurityGroupRule:
    rule = models.SecurityGroupRule(
        rule_id=ids.new("sgr"), group_id=group_id, account_id=account_id, is_egress=egress,
        protocol=spec.protocol, from_port=spec.from_port, to_port=spec.to_port, cidr=spec.cidr,
        ref_group_id=spec.ref_group_id, prefix_list_id=spec.prefix_list_id,
        description=spec.description)
    session.add(rule)
    return rule


def _ports(protocol: str, perm: dict[str, Any]) -> tuple[int, int]:
    if protocol == "-1":
        return -1, -1
    lo, hi = perm.get("FromPort"), perm.get("ToPort")
    if protocol in ("tcp", "udp"):
        if lo is None or hi is None:
            raise exc.InvalidPermissionMalformed(f"{protocol} rules need FromPort and ToPort")
        if lo == -1 and hi == -1:
            return 0, 65535
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
            raise exc.InvalidParameterValue(
                f"Invalid port range {lo}-{hi}: ports are 0-65535 and FromPort <= ToPort")
        return lo, hi
    if protocol in ("icmp", "icmpv6"):
        lo = -1 if lo is None else lo
        hi = -1 if hi is None else hi
        if not (-1 <= lo <= 255 and -1 <= hi <= 255):
            raise exc.InvalidParameterValue(f"Invalid ICMP type/code {lo}/{hi}")
        return lo, hi
    return -1, -1


def rule_count(session: Session, rules: list[models.SecurityGroupRule],
               specs: list[RuleSpec]) -> int:
    """Rules against the group's quota: a prefix-list rule counts as its list's MaxEntries,
    as on AWS."""
    from gureum.store.vpc_options_models import ManagedPrefixList

    named = [r.prefix_list_id for r in rules] + [spec.prefix_list_id for spec in specs]
    sizes = {pl.prefix_list_id: pl.max_entries for pl in session.scalars(
        select(ManagedPrefixList).where(ManagedPrefixList.prefix_list_id.in_(
            [n for n in named if n])))} if any(named) else {}
    return sum(sizes.get(n, 1) if n else 1 for n in named)


def parse_permissions(session: Session, account_id: str, p: dict[str, Any]) -> list[RuleSpec]:
    perms = list(p.get("IpPermissions") or [])
    if p.get("IpProtocol") or p.get("CidrIp") or p.get("SourceSecurityGroupName"):
        legacy: dict[str, Any] = {"IpProtocol": p.get("IpProtocol", "-1"),
                                  "FromPort": p.get("FromPort"), "ToPort": p.get("ToPort")}
        if p.get("CidrIp"):
            legacy["IpRanges"] = [{"CidrIp": p["CidrIp"]}]
        if p.get("SourceSecurityGroupName"):
            legacy["UserIdGroupPairs"] = [{"GroupName": p["SourceSecurityGroupName"]}]
        perms.append(legacy)
    if not perms:
        raise exc.MissingParameter("The request must contain the parameter IpPermissions")
    specs: list[RuleSpec] = []
    for perm in perms:
        raw = str(perm.get("IpProtocol", "")).lower()
        if raw in PROTOCOL_NAMES:
            protocol = PROTOCOL_NAMES[raw]
        elif raw.isdigit() and 0 <= int(raw) <= 255:
            protocol = raw
        else:
            raise exc.InvalidParameterValue(f"Invalid value '{raw[:32]}' for IP protocol.")
        lo, hi = _ports(protocol, perm)
        targets = 0
        for target in (*(perm.get("IpRanges") or []), *(perm.get("UserIdGroupPairs") or []),
                       *(perm.get("PrefixListIds") or []), *(perm.get("Ipv6Ranges") or [])):
            if len(target.get("Description", "")) > 255:
                raise exc.InvalidParameterValue("A rule's description exceeds 255 characters")
        for ranges, field, network in (("IpRanges", "CidrIp", ipaddress.IPv4Network),
                                       ("Ipv6Ranges", "CidrIpv6", ipaddress.IPv6Network)):
            for r in perm.get(ranges) or []:
                try:
                    cidr = str(network(r.get(field, ""), strict=False))
                except ValueError:
                    raise exc.InvalidParameterValue(
                        f"CIDR block {str(r.get(field))[:64]} is malformed") from None
                specs.append(RuleSpec(protocol, lo, hi, cidr, None, r.get("Description", "")))
                targets += 1
        for pair in perm.get("UserIdGroupPairs") or []:
            group = resolve_group(session, account_id, pair.get("GroupId"), pair.get("GroupName"))
            specs.append(RuleSpec(protocol, lo, hi, None, group.group_id, pair.get("Description", "")))
            targets += 1
        for item in perm.get("PrefixListIds") or []:
            from gureum.services.ec2 import prefix_lists

            found = prefix_lists.own(session, account_id, item.get("PrefixListId"))
            specs.append(RuleSpec(protocol, lo, hi, None, None, item.get("Description", ""),
                                  found.prefix_list_id))
            targets += 1
        if not targets:
            raise exc.InvalidPermissionMalformed(
                "A rule needs IpRanges, Ipv6Ranges, UserIdGroupPairs or PrefixListIds")
    return specs


def resolve_group(session: Session, account_id: str, group_id: str | None,
                  name: str | None, vpc_id: str | None = None) -> models.SecurityGroup:
    if group_id:
        ids.require(group_id, "sg", exc.InvalidGroupIdMalformed)
        group = session.get(models.SecurityGroup, group_id)
        if group is None or group.account_id != account_id:
            raise exc.InvalidGroupNotFound(f"The security group '{group_id}' does not exist")
        return group
    if name:
        from gureum.services.ec2.networks import default_vpc_id

        # As on AWS, names only find groups of the default VPC.
        q = select(models.SecurityGroup).where(
            models.SecurityGroup.account_id == account_id, models.SecurityGroup.name == name,
            models.SecurityGroup.vpc_id == (vpc_id or default_vpc_id(account_id)))
        group = session.scalar(q)
        if group is None:
            raise exc.InvalidGroupNotFound(
                f"The security group '{name[:255]}' does not exist in default VPC")
        return group
    raise exc.MissingParameter("The request must contain the parameter GroupId or GroupName")


def rule_view(rule: models.SecurityGroupRule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SecurityGroupRuleId": rule.rule_id, "GroupId": rule.group_id,
        "GroupOwnerId": rule.account_id, "IsEgress": rule.is_egress,
        "IpProtocol": rule.protocol, "FromPort": rule.from_port, "ToPort": rule.to_port,
        "Description": rule.description or None, "Tags": [],
    }
    if rule.cidr:
        out["CidrIpv6" if is_ipv6(rule.cidr) else "CidrIpv4"] = rule.cidr
    if rule.ref_group_id:
        out["ReferencedGroupInfo"] = {"GroupId": rule.ref_group_id, "UserId": rule.account_id}
    if rule.prefix_list_id:
        out["PrefixListId"] = rule.prefix_list_id
    return out


def permissions_view(rules: list[models.SecurityGroupRule]) -> list[dict[str, Any]]:
    """EC2's IpPermissions: rules grouped by protocol and ports."""
    grouped: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in rules:
        key = (rule.protocol, rule.from_port, rule.to_port)
        perm = grouped.setdefault(key, {"IpProtocol": rule.protocol, "IpRanges": [],
                                        "UserIdGroupPairs": [], "Ipv6Ranges": [],
                                        "PrefixListIds": []})
        if rule.protocol != "-1":
            perm["FromPort"], perm["ToPort"] = rule.from_port, rule.to_port
        if is_ipv6(rule.cidr):
            perm["Ipv6Ranges"].append({"CidrIpv6": rule.cidr,
                                       "Description": rule.description or None})
        elif rule.cidr:
            perm["IpRanges"].append({"CidrIp": rule.cidr, "Description": rule.description or None})
        if rule.ref_group_id:
            perm["UserIdGroupPairs"].append({"GroupId": rule.ref_group_id, "UserId": rule.account_id,
                                             "Description": rule.description or None})
        if rule.prefix_list_id:
            perm["PrefixListIds"].append({"PrefixListId": rule.prefix_list_id,
                                          "Description": rule.description or None})
    return list(grouped.values())


def firewalls(session: Session, only: set[str] | None = None) -> dict[str, Firewall]:
    """The firewall of every live network interface: instances keyed by instance id,
    load balancers by `lb-<id>`. A group's members are both kinds, with every address of
    an instance's interfaces. An instance's attached interfaces (device index 1+) have
    their own groups: the instance's firewall holds one rule set per interface. `only`:
    just those keys (one launch need not build the firewall of every instance)."""
    from gureum.services.ec2 import prefix_lists
    from gureum.store.elbv2_models import LoadBalancer

    resolvers = {v.vpc_id: str(ipaddress.ip_network(v.cidr)[2])
                 for v in session.scalars(select(models.Vpc))}
    # Columns, not ORM objects: this runs for every launch and every firewall pass, and
    # loading every live instance and interface as objects was most of its time.
    Eni = models.NetworkInterface
    live = session.execute(select(
        models.Instance.instance_id, models.Instance.vpc_id, models.Instance.private_ip,
        models.Instance.security_group_ids).where(
        models.Instance.state.in_(LIVE_STATES))).all()
    live_ids = {row.instance_id for row in live}
    extra: dict[str, list[tuple[int, list[str]]]] = {}  # (device index, groups) of ethN
    members: dict[str, list[str]] = {}
    with_rows: set[str] = set()
    for instance_id, device_index, groups, private_ip, secondary, ipv6 in session.execute(
            select(Eni.instance_id, Eni.device_index, Eni.security_group_ids, Eni.private_ip,
                   Eni.secondary_ips, Eni.ipv6_addresses).where(
                Eni.instance_id.is_not(None)).order_by(Eni.device_index)):
        if instance_id not in live_ids:
            continue
        with_rows.add(instance_id)
        if device_index:
            extra.setdefault(instance_id, []).append((device_index, groups))
        for group in groups:
            members.setdefault(group, []).extend([private_ip, *(secondary or [])])
            members[group].extend(ipv6 or [])
    interfaces = [(row.instance_id, row.vpc_id, row.private_ip, row.security_group_ids)
                  for row in live]
    lbs = [(f"lb-{lb_id}", vpc_id, address, groups) for lb_id, vpc_id, address, groups in
           session.execute(select(LoadBalancer.lb_id, LoadBalancer.vpc_id,
                                  LoadBalancer.private_ip, LoadBalancer.security_group_ids))]
    interfaces += lbs
    rules = list(session.scalars(select(models.SecurityGroupRule)))
    listed = prefix_lists.current_cidrs(session) if any(r.prefix_list_id for r in rules) else {}
    for key, _, address, groups in interfaces:
        if key not in with_rows:  # load balancers (and instances without interface rows)
            for group in groups:
                members.setdefault(group, []).append(address)
    by_group: dict[str, list[models.SecurityGroupRule]] = {}
    for rule in rules:
        by_group.setdefault(rule.group_id, []).append(rule)

    # Interfaces of the same groups share one value: built once, and compared with what
    # was applied by identity first (a group's members are in every member's).
    @functools.cache
    def rule_sets(groups: tuple[str, ...]) -> tuple[tuple[FirewallRule, ...],
                                                    tuple[FirewallRule, ...]]:
        ingress, egress = [], []
        for group in groups:
            for rule in by_group.get(group, []):
                peers = ((rule.cidr,) if rule.cidr
                         else listed.get(rule.prefix_list_id, ()) if rule.prefix_list_id
                         else tuple(members.get(rule.ref_group_id or "", [])))
                fw_rule = FirewallRule(rule.protocol, rule.from_port, rule.to_port, peers)
                (egress if rule.is_egress else ingress).append(fw_rule)
        return tuple(ingress), tuple(egress)

    out = {}
    for key, vpc_id, _, groups in interfaces:
        if only is not None and key not in only:
            continue
        ingress, egress = rule_sets(tuple(groups))
        per_interface = tuple(InterfaceFirewall(f"eth{device_index}", *rule_sets(tuple(groups)))
                              for device_index, groups in extra.get(key, []))
        out[key] = Firewall(ingress, egress, resolvers.get(vpc_id), per_interface)
    return out
