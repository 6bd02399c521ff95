"""IPv6 in the VPC: a VPC's Amazon-provided /56 carved from the operator's pool
(`GUREUM_IPV6_POOL`, a ULA range by default), subnets' /64s inside it, and the addresses
of interfaces in a subnet's /64. AWS reserves nothing in a /64 but gives the subnet's
router the first address (::1); here that address is the VPC router's own on its bridge,
so allocation starts above a few reserved low addresses."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from sqlalchemy import select

from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.store import models

VPC_PREFIX = 56
SUBNET_PREFIX = 64
RESERVED_LOW = 16  # ::0 .. ::f of each /64 stay out of allocation (::1 is the router)


def pool(value: str) -> ipaddress.IPv6Network:
    net = ipaddress.IPv6Network(value, strict=True)
    if net.prefixlen > VPC_PREFIX:
        raise ValueError(f"GUREUM_IPV6_POOL {value} must be /56 or larger")
    return net


def allocate_vpc_block(s: Any, pool_cidr: str, vpc_id: str) -> str:
    """A /56 of the pool: the one the VPC's id hashes to, else the next free one, so a
    VPC's block is deterministic and no two VPCs of the cloud share one."""
    net = pool(pool_cidr)
    count = 1 << (VPC_PREFIX - net.prefixlen)
    used = set(s.scalars(select(models.Vpc.ipv6_cidr).where(models.Vpc.ipv6_cidr.is_not(None))))
    start = int.from_bytes(hashlib.sha256(vpc_id.encode()).digest()[:8], "big") % count
    for step in range(count):
        index = (start + step) % count
        block = ipaddress.IPv6Network(
            (int(net.network_address) + (index << (128 - VPC_PREFIX)), VPC_PREFIX))
        if str(block) not in used:
            return str(block)
    raise exc.InsufficientCidrBlocks("The IPv6 pool of this cloud has no free /56 left")


def block_view(association_id: str, cidr: str, state: str, region: str | None = None
               ) -> dict[str, Any]:
    view: dict[str, Any] = {"AssociationId": association_id, "Ipv6CidrBlock": cidr,
                            "Ipv6CidrBlockState": {"State": state}}
    if region is not None:  # a VPC's block (a subnet's has no pool nor border group)
        view.update({"NetworkBorderGroup": region, "Ipv6Pool": "Amazon"})
    return view


def new_vpc_association() -> str:
    return ids.new("vpc-cidr-assoc")


def check_subnet_block(s: Any, vpc: models.Vpc, value: str,
                       subnet_id: str | None = None) -> str:
    """A subnet's IPv6 block: a /64 inside its VPC's /56, used by no other subnet."""
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError:
        raise exc.InvalidParameterValue(
            f"Value ({value[:64]}) for parameter ipv6CidrBlock is invalid. This is not a "
            "valid IPv6 CIDR block.") from None
    if vpc.ipv6_cidr is None:
        raise exc.InvalidSubnetRange(
            f"The IPv6 CIDR '{value}' is invalid: {vpc.vpc_id} has no IPv6 CIDR block")
    if net.prefixlen != SUBNET_PREFIX:
        raise exc.InvalidSubnetRange(
            f"The IPv6 CIDR '{value}' is invalid: a subnet's IPv6 block must be a /64")
    if not net.subnet_of(ipaddress.IPv6Network(vpc.ipv6_cidr)):
        raise exc.InvalidSubnetRange(
            f"The IPv6 CIDR '{value}' is not within the range of {vpc.vpc_id}'s IPv6 CIDR "
            f"block {vpc.ipv6_cidr}")
    taken = s.scalar(select(models.Subnet.subnet_id).where(
        models.Subnet.vpc_id == vpc.vpc_id, models.Subnet.ipv6_cidr == str(net),
        models.Subnet.subnet_id != (subnet_id or "")).limit(1))
    if taken is not None:
        raise exc.InvalidSubnetConflict(f"The CIDR '{value}' conflicts with another subnet")
    return str(net)


def router_address(subnet_ipv6_cidr: str) -> str:
    """The subnet's router, as AWS: the /64's first address."""
    return str(ipaddress.IPv6Network(subnet_ipv6_cidr).network_address + 1)


def used_addresses(s: Any, subnet_id: str) -> set[str]:
    return {a for row in s.scalars(select(models.NetworkInterface.ipv6_addresses).where(
        models.NetworkInterface.subnet_id == subnet_id)) for a in row or []}


def check_addresses(s: Any, subnet: models.Subnet, given: list[str]) -> list[str]:
    """Addresses asked for by name: in the subnet's /64, not reserved, not in use."""
    if subnet.ipv6_cidr is None:
        raise exc.InvalidParameterValue(
            f"Subnet {subnet.subnet_id} has no IPv6 CIDR block: no IPv6 address can be "
            "assigned in it")
    net = ipaddress.IPv6Network(subnet.ipv6_cidr)
    used, out = used_addresses(s, subnet.subnet_id), []
    for value in given:
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            raise exc.InvalidParameterValue(
                f"Value ({value[:64]}) for parameter ipv6Addresses is invalid") from None
        if address not in net or int(address) - int(net.network_address) < RESERVED_LOW:
            raise exc.InvalidParameterValue(
                f"Address {value} is not in subnet {subnet.subnet_id}'s range "
                f"{subnet.ipv6_cidr} or is reserved")
        if str(address) in used or str(address) in out:
            raise exc.InvalidIPAddressInUse(f"Address {address} is in use")
        out.append(str(address))
    return out


def allocate_addresses(s: Any, subnet: models.Subnet, count: int,
                       also_taken: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """`count` free addresses of the subnet's /64, the lowest free ones first."""
    if count <= 0:
        return []
    if subnet.ipv6_cidr is None:
        raise exc.InvalidParameterValue(
            f"Subnet {subnet.subnet_id} has no IPv6 CIDR block: no IPv6 address can be "
            "assigned in it")
    net = ipaddress.IPv6Network(subnet.ipv6_cidr)
    used = used_addresses(s, subnet.subnet_id) | set(also_taken)
    out: list[str] = []
    offset = RESERVED_LOW
    while len(out) < count:
        address = str(net.network_address + offset)
        if address not in used:
            out.append(address)
        offset += 1
    return out


def requested(spec: dict[str, Any]) -> tuple[list[str], int]:
    """A launch entry's or CreateNetworkInterface's IPv6 request: (listed, count)."""
    # Launch entries list {"Ipv6Address": ...}; AssignIpv6Addresses lists strings.
    listed = [a.get("Ipv6Address") if isinstance(a, dict) else a
              for a in spec.get("Ipv6Addresses") or []]
    count = spec.get("Ipv6AddressCount")
    if listed and count:
        raise exc.InvalidParameterCombination(
            "Ipv6Addresses and Ipv6AddressCount cannot both be specified")
    if count is not None and count < 0:
        raise exc.InvalidParameterValue("Ipv6AddressCount must be zero or more")
    if any(not a for a in listed):
        raise exc.MissingParameter("The request must contain the parameter Ipv6Address")
    return [str(a) for a in listed], count or 0


def assign_new(s: Any, subnet: models.Subnet, eni: models.NetworkInterface,
               spec: dict[str, Any], limit: int) -> None:
    """A new interface's IPv6 addresses: those asked for (listed or counted), else one
    when its subnet assigns on creation, as AWS does."""
    listed, count = requested(spec)
    if not listed and count == 0 and spec.get("Ipv6AddressCount") is None \
            and subnet.assign_ipv6_on_creation:
        count = 1
    if len(listed) + count > limit:
        raise exc.InvalidParameterValue(
            f"The number of IPv6 addresses ({len(listed) + count}) exceeds the limit of "
            f"{limit} per interface")
    if listed or count:
        s.flush()
        eni.ipv6_addresses = [*check_addresses(s, subnet, listed),
                              *allocate_addresses(s, subnet, count, set(listed))]


def normal(value: str) -> str:
    """An address as stored (compressed), or the value itself when it is none."""
    try:
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        return value
