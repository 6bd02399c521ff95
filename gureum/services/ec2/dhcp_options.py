"""DHCP options sets: what a VPC's instances are told about DNS.

Each account has a default set (made with its first VPC, as on AWS): the region's
domain name and AmazonProvidedDNS. A VPC names its set in `Vpc.dhcp_options_id`: NULL
is the account's default set, "default" is no set at all (no search domain, no server).
Only domain-name and domain-name-servers reach instances (their /etc/resolv.conf);
the other keys are kept and described.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import GuestDns
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.store import models
from gureum.store.vpc_options_models import DhcpOptions

AMAZON_PROVIDED_DNS = "AmazonProvidedDNS"
NO_OPTIONS = "default"
# Keys AWS accepts, and how many values each may have.
KEYS = {"domain-name": 1, "domain-name-servers": 4, "ntp-servers": 8,
        "netbios-name-servers": 4, "netbios-node-type": 1,
        "ipv6-address-preferred-lease-time": 1}


def default_id(account_id: str) -> str:
    return ids.derived("dopt", account_id)


def default_configurations(region: str) -> dict[str, list[str]]:
    return {"domain-name": [f"{region}.compute.internal"],
            "domain-name-servers": [AMAZON_PROVIDED_DNS]}


def ensure_default_set(session: Session, account_id: str, region: str) -> DhcpOptions:
    options = session.get(DhcpOptions, default_id(account_id))
    if options is None:
        options = DhcpOptions(dhcp_options_id=default_id(account_id), account_id=account_id,
                              configurations=default_configurations(region))
        session.add(options)
        session.flush()
    return options


def effective_id(vpc: models.Vpc) -> str:
    """What DescribeVpcs reports as the VPC's DhcpOptionsId."""
    return vpc.dhcp_options_id or default_id(vpc.account_id)


def _address(value: str, key: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise exc.InvalidParameterValue(
            f"Value ({value[:64]}) for parameter {key} is invalid. "
            "Expected a valid IPv4 address.") from None


def parse_configurations(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """CreateDhcpOptions' DhcpConfigurations, checked as AWS checks them."""
    out: dict[str, list[str]] = {}
    for item in items:
        key = item.get("Key") or ""
        values = [str(v) for v in item.get("Values") or []]
        if key not in KEYS:
            raise exc.InvalidParameterValue(f"Invalid DHCP option: {key[:64]}")
        if key in out:
            raise exc.InvalidParameterValue(f"The DHCP option {key} is given more than once")
        if not values:
            raise exc.InvalidParameterValue(f"Value for DHCP option {key} is missing")
        if len(values) > KEYS[key]:
            raise exc.InvalidParameterValue(
                f"The DHCP option {key} takes at most {KEYS[key]} value(s)")
        if key in ("domain-name-servers",):
            values = [v if v == AMAZON_PROVIDED_DNS else _address(v, key) for v in values]
        elif key in ("ntp-servers", "netbios-name-servers"):
            values = [_address(v, key) for v in values]
        elif key == "netbios-node-type" and values[0] not in ("1", "2", "4", "8"):
            raise exc.InvalidParameterValue("netbios-node-type must be 1, 2, 4 or 8")
        elif key == "domain-name":
            names = values[0].split()
            if not names or any(len(n) > 255 or not all(
                    part and all(c.isalnum() or c == "-" for c in part)
                    for part in n.rstrip(".").split(".")) for n in names):
                raise exc.InvalidParameterValue(
                    f"Value ({values[0][:64]}) for parameter domain-name is invalid.")
        elif key == "ipv6-address-preferred-lease-time" and not (
                values[0].isdigit() and 140 <= int(values[0]) <= 2147483647):
            raise exc.InvalidParameterValue(
                    "ipv6-address-preferred-lease-time must be 140 to 2147483647 seconds")
        out[key] = values
    if not out:
        raise exc.MissingParameter("The request must contain the parameter DhcpConfiguration")
    return out


def guest_dns(vpc: models.Vpc, options: dict[str, dict[str, list[str]]],
              region: str) -> GuestDns:
    """The resolv.conf of the VPC's instances. `options`: configurations by set id."""
    if vpc.dhcp_options_id == NO_OPTIONS:
        return GuestDns()
    config = options.get(effective_id(vpc))
    if config is None:  # the account's default set, not made yet
        config = default_configurations(region)
    resolver = str(ipaddress.ip_network(vpc.cidr)[2])
    servers = tuple(dict.fromkeys(resolver if s == AMAZON_PROVIDED_DNS else s
                                  for s in config.get("domain-name-servers", [])))
    search = tuple((config.get("domain-name") or [""])[0].split())
    return GuestDns(search=search, nameservers=servers)


def guest_dns_by_vpc(session: Session, vpcs: list[models.Vpc],
                     region: str) -> dict[str, GuestDns]:
    wanted = {effective_id(v) for v in vpcs}
    options = {o.dhcp_options_id: o.configurations for o in session.scalars(
        select(DhcpOptions).where(DhcpOptions.dhcp_options_id.in_(wanted)))}
    return {v.vpc_id: guest_dns(v, options, region) for v in vpcs}
