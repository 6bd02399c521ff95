"""AssignIpv6Addresses / UnassignIpv6Addresses: IPv6 addresses of an interface, in its
subnet's /64. The firewall controller carries the change to the host (the interface's
addresses in the instance and in the bridge's anti-spoof set)."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ipv6
from gureum.services.ec2.handlers.network_interfaces import address_limit, own_interface
from gureum.store import models


@action("ec2", "AssignIpv6Addresses")
def assign_ipv6_addresses(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv6Prefixes") or p.get("Ipv6PrefixCount"):
        raise exc.UnsupportedOperation("IPv6 prefixes are not supported")
    listed, count = ipv6.requested(p)
    if not listed and not count:
        raise exc.MissingParameter(
            "The request must contain the parameter Ipv6Addresses or Ipv6AddressCount")
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"])
        subnet = s.get(models.Subnet, eni.subnet_id)
        assert subnet is not None
        new = [a for a in listed if a not in eni.ipv6_addresses]
        limit = address_limit(s, eni)
        if len(eni.ipv6_addresses) + len(new) + count > limit:
            raise exc.InvalidParameterValue(
                f"The number of IPv6 addresses will exceed the limit of {limit} per interface")
        claimed = [*ipv6.check_addresses(s, subnet, new),
                   *ipv6.allocate_addresses(s, subnet, count, set(new))]
        eni.ipv6_addresses = [*eni.ipv6_addresses, *claimed]
    return {"NetworkInterfaceId": eni.eni_id, "AssignedIpv6Addresses": claimed}


@action("ec2", "UnassignIpv6Addresses")
def unassign_ipv6_addresses(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv6Prefixes"):
        raise exc.UnsupportedOperation("IPv6 prefixes are not supported")
    wanted = [str(a) for a in p.get("Ipv6Addresses") or []]
    if not wanted:
        raise exc.MissingParameter("The request must contain the parameter Ipv6Addresses")
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"])
        normal = {ipv6.normal(a): a for a in wanted}
        if any(a not in eni.ipv6_addresses for a in normal):
            raise exc.InvalidParameterValue(
                f"Some of the specified addresses are not assigned to interface {eni.eni_id}")
        eni.ipv6_addresses = [a for a in eni.ipv6_addresses if a not in normal]
    return {"NetworkInterfaceId": eni.eni_id, "UnassignedIpv6Addresses": wanted}
