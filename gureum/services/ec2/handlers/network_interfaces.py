"""Elastic network interfaces: create, describe, attach to an instance at device index
1+ (where the host gives the instance an ethN of its own), detach, delete, change their
groups, description and source/dest check, and assign or unassign secondary private
addresses. The store side is `services/ec2/interfaces.py`; the host side is made by the
interface controller from the store."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select

from gureum.agent.network import mac_for
from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import allocation, filters, ids, interfaces, ipv6, networks
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers import common
from gureum.services.ec2.instance_types import CATALOGUE, DEFAULT
from gureum.services.ec2.views import private_dns
from gureum.store import models

# Addresses an interface may hold before it is attached (AWS: the largest type's limit).
UNATTACHED_ADDRESS_LIMIT = 50
ATTACHABLE_STATES = ("pending", "running", "stopping", "stopped")


def not_found(eni_id: str) -> exc.ApiError:
    return exc.InvalidNetworkInterfaceIDNotFound(
        f"The networkInterface ID '{eni_id[:64]}' does not exist")


def own_interface(ctx: RequestContext, s: Any, eni_id: str,
                  managed_ok: bool = False) -> models.NetworkInterface:
    """The account's interface; one a NAT gateway manages is for describing only
    (`managed_ok`), as AWS refuses changes to requester-managed interfaces."""
    ids.require(eni_id, "eni", exc.InvalidNetworkInterfaceIDMalformed)
    eni = common.owned(s, ctx.account_id, models.NetworkInterface, eni_id, not_found)
    if eni.interface_type != "interface" and not managed_ok:
        raise exc.OperationNotPermitted(
            f"The network interface {eni.eni_id} is managed by a {eni.interface_type} "
            "and cannot be changed directly")
    return eni


def _groups(s: Any, account: str, vpc_id: str, group_ids: list[str]) -> list[str]:
    found = [sg.resolve_group(s, account, g, None) for g in group_ids]
    for group in found:
        if group.vpc_id != vpc_id:
            raise exc.InvalidParameterValue(
                f"The security group '{group.group_id}' does not belong to VPC '{vpc_id}'")
    return list(dict.fromkeys(g.group_id for g in found))


def _in_subnet(subnet: models.Subnet, address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise exc.InvalidParameterValue(
            f"Invalid value '{address[:64]}' for IP address") from None
    net = ipaddress.ip_network(subnet.cidr)
    first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
    if ip not in net:
        raise exc.InvalidParameterValue(
            f"Address {address} does not fall within the subnet's address range")
    if not first <= int(ip) <= last:
        raise exc.InvalidParameterValue(f"Address {address} is reserved by AWS")
    return str(ip)


def _claim(s: Any, subnet: models.Subnet, wanted: list[str], count: int,
           taken_ok: set[str] | None = None) -> list[str]:
    """`wanted` (each free in the VPC, unless in `taken_ok`) plus `count` free addresses
    of the subnet."""
    free_now = allocation.free_private_ips(s, subnet.vpc_id, subnet.cidr)
    used_in_vpc = _used(s, subnet.vpc_id)
    out = []
    for address in wanted:
        address = _in_subnet(subnet, address)
        if address in out or (address in used_in_vpc and address not in (taken_ok or set())):
            raise exc.InvalidIPAddressInUse(f"Address {address} is in use.")
        out.append(address)
    for address in free_now:
        if len(out) >= len(wanted) + count:
            break
        if address not in out:
            out.append(address)
    if len(out) < len(wanted) + count:
        raise exc.InsufficientFreeAddressesInSubnet(
            f"Subnet {subnet.subnet_id} has not enough free addresses.")
    return out


def _used(s: Any, vpc_id: str) -> set[str]:
    free_or_not = set(s.scalars(select(models.Instance.private_ip).where(
        models.Instance.state != "terminated", models.Instance.vpc_id == vpc_id)))
    from gureum.store.elbv2_models import LoadBalancer

    free_or_not |= set(s.scalars(select(LoadBalancer.private_ip).where(
        LoadBalancer.vpc_id == vpc_id)))
    return free_or_not | interfaces.used_addresses(s, vpc_id)


def address_limit(s: Any, eni: models.NetworkInterface) -> int:
    """How many private addresses the interface may hold: its instance type's limit per
    interface when attached."""
    if eni.instance_id is None:
        return UNATTACHED_ADDRESS_LIMIT
    inst = s.get(models.Instance, eni.instance_id)
    itype = CATALOGUE.get(inst.instance_type if inst else DEFAULT, CATALOGUE[DEFAULT])
    return itype.addresses_per_interface


def _check_limit(total: int, limit: int) -> None:
    if total > limit:
        raise exc.PrivateIpAddressLimitExceeded(
            f"Number of private addresses will exceed limit of {limit}.")


def new_interface(ctx: RequestContext, s: Any, subnet: models.Subnet, spec: dict[str, Any],
                  limit: int = UNATTACHED_ADDRESS_LIMIT) -> models.NetworkInterface:
    """An interface from CreateNetworkInterface's (or a RunInstances NetworkInterfaces
    entry's) address and group parameters, added to the session."""
    listed = spec.get("PrivateIpAddresses") or []
    if sum(1 for a in listed if a.get("Primary")) > 1:
        raise exc.InvalidParameterValue("Only one primary private IP address may be specified")
    primary = spec.get("PrivateIpAddress")
    listed_primary = next((a.get("PrivateIpAddress") for a in listed if a.get("Primary")), None)
    if primary and listed_primary and primary != listed_primary:
        raise exc.InvalidParameterCombination(
            "The primary IP address is specified twice, with different values")
    primary = primary or listed_primary
    secondaries = [a.get("PrivateIpAddress") for a in listed
                   if a.get("PrivateIpAddress") and a.get("PrivateIpAddress") != primary]
    count = spec.get("SecondaryPrivateIpAddressCount") or 0
    if count < 0:
        raise exc.InvalidParameterValue("SecondaryPrivateIpAddressCount must be positive")
    _check_limit(1 + len(secondaries) + count, limit)
    wanted = ([primary] if primary else []) + secondaries
    claimed = _claim(s, subnet, wanted, count + (0 if primary else 1))
    if not primary:  # the first free address is the primary, as AWS picks it
        claimed = [claimed[len(wanted)], *claimed[:len(wanted)], *claimed[len(wanted) + 1:]]
    vpc = s.get(models.Vpc, subnet.vpc_id)
    groups = _groups(s, ctx.account_id, subnet.vpc_id, spec.get("Groups") or []) or [
        networks.default_group_id(ctx.account_id, vpc.vpc_id, vpc.is_default)]
    eni = models.NetworkInterface(
        eni_id=ids.new("eni"), account_id=ctx.account_id, vpc_id=subnet.vpc_id,
        subnet_id=subnet.subnet_id, availability_zone=subnet.availability_zone,
        private_ip=claimed[0], secondary_ips=claimed[1:], security_group_ids=groups,
        description=(spec.get("Description") or "")[:255], source_dest_check=True,
        mac_address=mac_for(claimed[0]), status="available")
    s.add(eni)
    s.flush()
    ipv6.assign_new(s, subnet, eni, spec, limit)
    return eni


@action("ec2", "CreateNetworkInterface")
def create_network_interface(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("InterfaceType") not in (None, "interface"):
        raise exc.InvalidParameterValue(
            f"Interface type '{p['InterfaceType'][:32]}' is not supported")
    if p.get("Ipv4Prefixes") or p.get("Ipv4PrefixCount") or p.get("Ipv6Prefixes") \
            or p.get("Ipv6PrefixCount") or p.get("EnablePrimaryIpv6"):
        raise exc.UnsupportedOperation("Prefixes and primary IPv6 addresses are not supported")
    tags = common.tags_from_specs(p, "network-interface")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        subnet = s.get(models.Subnet, p["SubnetId"])
        if subnet is None or subnet.account_id != ctx.account_id:
            raise exc.InvalidSubnetIDNotFound(f"The subnet ID '{p['SubnetId'][:64]}' does not exist")
        eni = new_interface(ctx, s, subnet, p)
        common.put_tags(s, ctx.account_id, eni.eni_id, tags)
        view = _views(ctx, s, [eni])[0]
    return {"NetworkInterface": view}


def _views(ctx: RequestContext, s: Any, rows: list[models.NetworkInterface],
           tags: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    names = common.group_names(s, ctx.account_id)
    hostless = common.vpcs_without_hostnames(s, ctx.account_id)
    public = interfaces.public_addresses(s, rows)
    tags = tags or common.tags_of(s, ctx.account_id, [r.eni_id for r in rows])
    return [interfaces.view(r, ctx.cloud.config.region, names, public,
                            r.vpc_id not in hostless, tags.get(r.eni_id, {})) for r in rows]


FILTERS = {"network-interface-id", "subnet-id", "vpc-id", "status", "availability-zone",
           "description", "group-id", "group-name", "mac-address", "owner-id",
           "private-ip-address", "private-dns-name", "addresses.private-ip-address",
           "addresses.primary", "addresses.association.public-ip", "association.public-ip",
           "attachment.attachment-id", "attachment.instance-id", "attachment.instance-owner-id",
           "attachment.device-index", "attachment.status", "attachment.delete-on-termination",
           "source-dest-check", "interface-type", "requester-managed",
           "ipv6-addresses.ipv6-address", "ipv6-address"}


def _fields(eni: models.NetworkInterface, view: dict[str, Any], region: str) -> dict[str, Any]:
    attached = eni.instance_id is not None
    publics = [a["Association"]["PublicIp"] for a in view["PrivateIpAddresses"]
               if a.get("Association")]
    return {
        "network-interface-id": eni.eni_id, "subnet-id": eni.subnet_id, "vpc-id": eni.vpc_id,
        "status": eni.status, "availability-zone": eni.availability_zone,
        "description": eni.description, "group-id": eni.security_group_ids,
        "group-name": [g["GroupName"] for g in view["Groups"]], "mac-address": eni.mac_address,
        "owner-id": eni.account_id, "private-ip-address": eni.addresses(),
        "private-dns-name": private_dns(eni.private_ip, region),
        "addresses.private-ip-address": eni.addresses(),
        "addresses.primary": ["true"], "addresses.association.public-ip": publics,
        "association.public-ip": (view.get("Association") or {}).get("PublicIp"),
        "attachment.attachment-id": eni.attachment_id,
        "attachment.instance-id": eni.instance_id,
        "attachment.instance-owner-id": eni.account_id if attached else None,
        "attachment.device-index": eni.device_index,
        "attachment.status": "attached" if attached else None,
        "attachment.delete-on-termination": eni.delete_on_termination if attached else None,
        "source-dest-check": eni.source_dest_check, "interface-type": eni.interface_type,
        "requester-managed": eni.interface_type != "interface",
        "ipv6-addresses.ipv6-address": eni.ipv6_addresses or [],
        "ipv6-address": eni.ipv6_addresses or [],
    }


@action("ec2", "DescribeNetworkInterfaces")
def describe_network_interfaces(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), FILTERS)
    wanted = p.get("NetworkInterfaceIds") or []
    if wanted and p.get("MaxResults") is not None:
        raise exc.InvalidParameterCombination(
            "The parameter networkInterfaceIdSet cannot be used with the parameter maxResults")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.account_id == ctx.account_id).order_by(
                models.NetworkInterface.created_at, models.NetworkInterface.eni_id)))
        by_id = {r.eni_id: r for r in rows}
        for eni_id in wanted:
            ids.require(eni_id, "eni", exc.InvalidNetworkInterfaceIDMalformed)
            if eni_id not in by_id:
                raise not_found(eni_id)
        rows = [by_id[i] for i in dict.fromkeys(wanted)] if wanted else rows
        tags = common.tags_of(s, ctx.account_id, [r.eni_id for r in rows])
        views = _views(ctx, s, rows, tags)
    region = ctx.cloud.config.region
    out = [v for r, v in zip(rows, views, strict=True)
           if filters.match(flt, _fields(r, v, region), tags[r.eni_id])]
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"))
    return {"NetworkInterfaces": chunk, "NextToken": token}


@action("ec2", "DeleteNetworkInterface")
def delete_network_interface(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"], managed_ok=True)
        if eni.interface_type != "interface":  # a NAT gateway's: AWS's words and code
            raise exc.InvalidParameterValue(
                f"Network interface '{eni.eni_id}' is currently in use.")
        if eni.instance_id is not None:
            raise exc.InvalidNetworkInterfaceInUse(
                f"The network interface '{eni.eni_id}' is currently in use.")
        for address in s.scalars(select(models.Address).where(
                models.Address.eni_id == eni.eni_id)):
            address.eni_id, address.private_ip, address.association_id = None, None, None
        common.delete_with_tags(s, eni)
    return {}


@action("ec2", "AttachNetworkInterface")
def attach_network_interface(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("NetworkCardIndex") not in (None, 0):
        raise exc.InvalidParameterValue("This instance type has one network card (index 0)")
    index = p["DeviceIndex"]
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"])
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        attach(s, eni, inst, index)
        attachment = eni.attachment_id
    return {"AttachmentId": attachment, "NetworkCardIndex": 0}


def attach(s: Any, eni: models.NetworkInterface, inst: models.Instance, index: int,
           delete_on_termination: bool = False, primary: bool = False) -> None:
    """Attach an available interface at device index `index` (1+; 0 only as the
    `primary` of an instance being launched with it), with AWS's checks."""
    if inst.state not in ATTACHABLE_STATES:
        raise exc.IncorrectInstanceState(
            f"The instance '{inst.instance_id}' is not in a valid state for this operation.")
    if eni.instance_id is not None:
        raise exc.InvalidNetworkInterfaceInUse(f"Interface: [{eni.eni_id}] in use.")
    if eni.availability_zone != inst.availability_zone or eni.vpc_id != inst.vpc_id:
        raise exc.InvalidParameterCombination(
            "The network interface and the instance must be in the same VPC and "
            "availability zone")
    itype = CATALOGUE.get(inst.instance_type, CATALOGUE[DEFAULT])
    if not (primary and index == 0) and not 1 <= index < itype.max_interfaces * 2:
        raise exc.InvalidParameterValue(f"Invalid value '{index}' for deviceIndex")
    attached = interfaces.of_instances(s, [inst.instance_id])[inst.instance_id]
    if any(e.device_index == index for e in attached):
        raise exc.InvalidParameterValue(
            f"Instance '{inst.instance_id}' already has an interface attached at device "
            f"index '{index}'.")
    if len(attached) + 1 > itype.max_interfaces:
        raise exc.AttachmentLimitExceeded(
            f"Interface count {len(attached) + 1} exceeds the limit for {inst.instance_type}")
    _check_limit(len(eni.addresses()), itype.addresses_per_interface)
    eni.status, eni.instance_id, eni.device_index = "in-use", inst.instance_id, index
    eni.attachment_id, eni.attach_time = ids.new("eni-attach"), models.utcnow()
    eni.delete_on_termination = delete_on_termination


@action("ec2", "DetachNetworkInterface")
def detach_network_interface(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    attachment = p["AttachmentId"]
    with ctx.cloud.store.write() as s:
        eni = s.scalar(select(models.NetworkInterface).where(
            models.NetworkInterface.attachment_id == attachment,
            models.NetworkInterface.account_id == ctx.account_id))
        if eni is None:
            raise exc.InvalidAttachmentIDNotFound(
                f"Interface attachment {attachment[:64]} does not exist.")
        if eni.device_index == 0:
            raise exc.OperationNotPermitted(
                "The network interface at device index 0 cannot be detached.")
        interfaces.detach(eni)
    return {}


def _only_one(p: dict[str, Any], names: tuple[str, ...]) -> str:
    given = [n for n in names if p.get(n) is not None and p.get(n) != []]
    if len(given) > 1:
        raise exc.InvalidParameterCombination(
            f"Fields for multiple attribute types specified: {', '.join(given)}")
    if not given:
        raise exc.MissingParameter("The request must contain an attribute to modify")
    return given[0]


@action("ec2", "ModifyNetworkInterfaceAttribute")
def modify_network_interface_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    which = _only_one(p, ("Groups", "Description", "SourceDestCheck", "Attachment",
                          "AssociatePublicIpAddress", "EnaSrdSpecification",
                          "ConnectionTrackingSpecification", "EnablePrimaryIpv6",
                          "AssociatedSubnetIds"))
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"])
        if which == "Groups":
            eni.security_group_ids = _groups(s, ctx.account_id, eni.vpc_id, p["Groups"])
            inst = s.get(models.Instance, eni.instance_id) if eni.device_index == 0 else None
            if inst is not None:  # the instance's groups are its primary interface's
                inst.security_group_ids = list(eni.security_group_ids)
        elif which == "Description":
            eni.description = ((p["Description"] or {}).get("Value") or "")[:255]
        elif which == "SourceDestCheck":
            eni.source_dest_check = bool((p["SourceDestCheck"] or {}).get("Value", True))
        elif which == "Attachment":
            change = p["Attachment"] or {}
            if eni.attachment_id is None or change.get("AttachmentId") != eni.attachment_id:
                raise exc.InvalidAttachmentIDNotFound(
                    f"Interface attachment {str(change.get('AttachmentId'))[:64]} does not "
                    "exist.")
            if change.get("DeleteOnTermination") is not None:
                eni.delete_on_termination = bool(change["DeleteOnTermination"])
        else:
            raise exc.UnsupportedOperation(f"Modifying {which} is not supported")
    return {}


@action("ec2", "DescribeNetworkInterfaceAttribute")
def describe_network_interface_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    attribute = p.get("Attribute")
    with ctx.cloud.store.read() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"], managed_ok=True)
        view = _views(ctx, s, [eni])[0]
    out: dict[str, Any] = {"NetworkInterfaceId": eni.eni_id}
    if attribute == "description":
        out["Description"] = {"Value": eni.description}
    elif attribute == "groupSet":
        out["Groups"] = view["Groups"]
    elif attribute == "sourceDestCheck":
        out["SourceDestCheck"] = {"Value": eni.source_dest_check}
    elif attribute == "attachment":
        out["Attachment"] = view.get("Attachment")
    elif attribute == "associatePublicIpAddress":
        out["AssociatePublicIpAddress"] = view.get("Association") is not None
    else:
        raise exc.InvalidParameterValue(f"Value ({str(attribute)[:32]}) for parameter "
                                        "attribute is invalid.")
    return out


@action("ec2", "AssignPrivateIpAddresses")
def assign_private_ip_addresses(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv4Prefixes") or p.get("Ipv4PrefixCount"):
        raise exc.UnsupportedOperation("IPv4 prefixes are not supported")
    wanted = p.get("PrivateIpAddresses") or []
    count = p.get("SecondaryPrivateIpAddressCount")
    if wanted and count:
        raise exc.InvalidParameterCombination(
            "PrivateIpAddresses and SecondaryPrivateIpAddressCount cannot both be specified")
    if not wanted and not count:
        raise exc.MissingParameter(
            "The request must contain the parameter PrivateIpAddresses or "
            "SecondaryPrivateIpAddressCount")
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"])
        subnet = s.get(models.Subnet, eni.subnet_id)
        assert subnet is not None
        new = [a for a in wanted if a not in eni.addresses()]
        _check_limit(len(eni.addresses()) + len(new) + (count or 0), address_limit(s, eni))
        movable: set[str] = set()
        if p.get("AllowReassignment"):  # secondaries of other interfaces may move here
            movable = {ip for other in s.scalars(select(models.NetworkInterface).where(
                models.NetworkInterface.vpc_id == eni.vpc_id,
                models.NetworkInterface.account_id == ctx.account_id,
                models.NetworkInterface.eni_id != eni.eni_id)) for ip in other.secondary_ips}
        claimed = _claim(s, subnet, new, count or 0, movable)
        for other in s.scalars(select(models.NetworkInterface).where(
                models.NetworkInterface.vpc_id == eni.vpc_id,
                models.NetworkInterface.eni_id != eni.eni_id)):
            if set(other.secondary_ips) & set(claimed):
                other.secondary_ips = [a for a in other.secondary_ips if a not in claimed]
        eni.secondary_ips = [*eni.secondary_ips, *claimed]
    return {"NetworkInterfaceId": eni.eni_id,
            "AssignedPrivateIpAddresses": [{"PrivateIpAddress": a} for a in claimed]}


@action("ec2", "UnassignPrivateIpAddresses")
def unassign_private_ip_addresses(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv4Prefixes"):
        raise exc.UnsupportedOperation("IPv4 prefixes are not supported")
    wanted = p.get("PrivateIpAddresses") or []
    if not wanted:
        raise exc.MissingParameter("The request must contain the parameter PrivateIpAddresses")
    with ctx.cloud.store.write() as s:
        eni = own_interface(ctx, s, p["NetworkInterfaceId"])
        if any(a not in eni.secondary_ips for a in wanted):
            raise exc.InvalidParameterValue(
                f"Some of the specified addresses are not assigned to interface {eni.eni_id}")
        eni.secondary_ips = [a for a in eni.secondary_ips if a not in wanted]
        for address in s.scalars(select(models.Address).where(
                models.Address.eni_id == eni.eni_id, models.Address.private_ip.in_(wanted))):
            address.eni_id, address.private_ip = None, None
            address.instance_id, address.association_id = None, None
    return {}


# -- RunInstances' NetworkInterfaces -----------------------------------------------------------
_NEW_ONLY = ("SubnetId", "Groups", "PrivateIpAddress", "PrivateIpAddresses",
             "SecondaryPrivateIpAddressCount", "Description", "Ipv6Addresses",
             "Ipv6AddressCount")


def launch_specs(specs: list[dict[str, Any]], max_count: int,
                 instance_type: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """RunInstances' NetworkInterfaces checked as EC2 checks them: (the entry at device
    index 0, the others by index)."""
    if not specs:
        return {}, []
    for spec in specs:
        if spec.get("DeviceIndex") is None and spec.get("NetworkCardIndex") is None:
            raise exc.InvalidParameterValue("Each network interface requires a device index.")
        if spec.get("NetworkCardIndex") not in (None, 0):
            raise exc.InvalidParameterValue("This instance type has one network card (index 0)")
        if spec.get("Ipv4Prefixes") or spec.get("Ipv4PrefixCount") or \
                spec.get("Ipv6Prefixes") or spec.get("Ipv6PrefixCount") or \
                spec.get("PrimaryIpv6"):
            raise exc.UnsupportedOperation("Prefixes and primary IPv6 addresses are not supported")
        listed, _ = ipv6.requested(spec)
        if listed and max_count > 1:
            raise exc.InvalidParameterCombination(
                "IPv6 addresses can only be given when launching one instance")
        if spec.get("NetworkInterfaceId"):
            given = [k for k in _NEW_ONLY if spec.get(k) not in (None, [])]
            if given:
                raise exc.InvalidParameterCombination(
                    f"An existing network interface cannot be given with {given[0]}")
            if max_count > 1:
                raise exc.InvalidParameterCombination(
                    "Network interfaces with an existing ID can only launch one instance")
    indexes = [s.get("DeviceIndex", 0) for s in specs]
    if len(set(indexes)) != len(indexes):
        raise exc.InvalidParameterValue("Each network interface requires a unique device index.")
    if 0 not in indexes:
        raise exc.InvalidParameterValue(
            "When specifying network interfaces, one must be at device index 0.")
    if len(specs) > 1 and any(s.get("AssociatePublicIpAddress") is not None for s in specs):
        raise exc.InvalidParameterCombination(
            "The associatePublicIPAddress parameter cannot be specified when launching with "
            "multiple network interfaces.")
    itype = CATALOGUE[instance_type]
    if len(specs) > itype.max_interfaces:
        raise exc.AttachmentLimitExceeded(
            f"Interface count {len(specs)} exceeds the limit for {instance_type}")
    for spec in specs:
        if spec.get("DeviceIndex", 0) and not spec.get("NetworkInterfaceId") \
                and not spec.get("SubnetId"):
            raise exc.InvalidParameterValue(
                "Each network interface requires either a subnet or a network interface ID.")
        addresses = 1 + len(spec.get("PrivateIpAddresses") or []) + \
            (spec.get("SecondaryPrivateIpAddressCount") or 0)
        _check_limit(addresses - (1 if spec.get("PrivateIpAddresses") else 0),
                     itype.addresses_per_interface)
    ordered = sorted(specs, key=lambda s: s.get("DeviceIndex", 0))
    if max_count > 1 and (ordered[0].get("PrivateIpAddress") or any(
            a.get("PrivateIpAddress") for s in ordered for a in s.get("PrivateIpAddresses") or [])):
        raise exc.InvalidParameterCombination(
            "A private IP address can only be given when launching one instance")
    return ordered[0], ordered[1:]


def existing_for_launch(ctx: RequestContext, s: Any, eni_id: str) -> models.NetworkInterface:
    eni = own_interface(ctx, s, eni_id)
    if eni.instance_id is not None:
        raise exc.InvalidNetworkInterfaceInUse(f"Interface: [{eni.eni_id}] in use.")
    return eni


def launch_extras(ctx: RequestContext, s: Any, inst: models.Instance,
                  extras: list[dict[str, Any]]) -> None:
    """The interfaces a RunInstances entry asks for at device index 1+: made (deleted with
    the instance unless DeleteOnTermination is false) or existing ones, attached."""
    for spec in extras:
        if spec.get("NetworkInterfaceId"):
            eni = existing_for_launch(ctx, s, spec["NetworkInterfaceId"])
            default_delete = False
        else:
            subnet = s.get(models.Subnet, spec["SubnetId"])
            if subnet is None or subnet.account_id != ctx.account_id:
                raise exc.InvalidSubnetIDNotFound(
                    f"The subnet ID '{spec['SubnetId'][:64]}' does not exist")
            eni = new_interface(ctx, s, subnet, spec)
            default_delete = True
        attach(s, eni, inst, spec["DeviceIndex"],
               spec.get("DeleteOnTermination", default_delete))


def claim_primary(s: Any, subnet: models.Subnet, spec: dict[str, Any]) -> str:
    """The primary address of a new instance's interface: the one asked for, else the
    subnet's first free one."""
    asked = spec.get("PrivateIpAddress") or next(
        (a.get("PrivateIpAddress") for a in spec.get("PrivateIpAddresses") or []
         if a.get("Primary")), None)
    return _claim(s, subnet, [asked] if asked else [], 0 if asked else 1)[0]


def add_secondaries(s: Any, subnet: models.Subnet, eni: models.NetworkInterface,
                    spec: dict[str, Any]) -> None:
    """A launch entry's secondary addresses (listed or counted) on its new interface."""
    listed = [a["PrivateIpAddress"] for a in spec.get("PrivateIpAddresses") or []
              if a.get("PrivateIpAddress") and a.get("PrivateIpAddress") != eni.private_ip]
    count = spec.get("SecondaryPrivateIpAddressCount") or 0
    if listed or count:
        eni.secondary_ips = _claim(s, subnet, listed, count)
