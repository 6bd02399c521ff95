"""Elastic IPs: stable public addresses from the pool, moved between instances without
restarting them (one nft map element changes), kept across stop/start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import allocation, filters, ids, interfaces
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2.handlers import common, network_interfaces
from gureum.services.ec2.views import tag_list
from gureum.store import models

MAX_ADDRESSES = 5


def _find(s: Any, account_id: str, allocation_id: str | None, public_ip: str | None) -> models.Address:
    if allocation_id:
        address = s.get(models.Address, allocation_id)
        if address is None or address.account_id != account_id:
            raise exc.InvalidAllocationIDNotFound(f"The allocation ID '{allocation_id[:64]}' does not exist")
        return address
    if public_ip:
        address = s.scalar(select(models.Address).where(models.Address.public_ip == public_ip,
                                                        models.Address.account_id == account_id))
        if address is None:
            raise exc.InvalidAddressNotFound(f"Address {public_ip[:64]} not found.")
        return address
    raise exc.MissingParameter("The request must contain the parameter AllocationId or PublicIp")


def _remap(ctx: RequestContext) -> None:
    """Move public addresses on the host, in place (no instance restarts)."""
    ctx.cloud.sync_public_ips()


@action("ec2", "AllocateAddress")
def allocate_address(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Domain", "vpc") != "vpc":
        raise exc.InvalidParameterValue("Only vpc addresses exist here (EC2-Classic is retired)")
    checked = common.tags_from_specs(p, "elastic-ip")
    with ctx.cloud.store.write() as s:
        held = len(list(s.scalars(select(models.Address.allocation_id).where(
            models.Address.account_id == ctx.account_id))))
        if held >= MAX_ADDRESSES:
            raise exc.AddressLimitExceeded("The maximum number of addresses has been reached.")
        wanted = p.get("Address")
        free = allocation.free_public_ips(s, ctx.cloud.config.public_pool)
        if wanted:
            if not allocation.is_free_public_ip(s, ctx.cloud.config.public_pool, wanted):
                raise exc.InvalidAddressNotFound(f"Address {wanted[:64]} is not available in the pool.")
            public_ip = wanted
        else:
            public_ip = next(free, None)
            if public_ip is None:
                raise exc.InsufficientInstanceCapacity("The public address pool is exhausted")
        address = models.Address(allocation_id=ids.new("eipalloc"), account_id=ctx.account_id,
                                 public_ip=public_ip)
        s.add(address)
        s.flush()
        common.put_tags(s, ctx.account_id, address.allocation_id, checked)
    return {"PublicIp": public_ip, "AllocationId": address.allocation_id, "Domain": "vpc",
            "PublicIpv4Pool": "gureum", "NetworkBorderGroup": ctx.cloud.config.region}


@action("ec2", "AssociateAddress")
def associate_address(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("InstanceId") and not p.get("NetworkInterfaceId"):
        raise exc.MissingParameter(
            "The request must contain the parameter InstanceId or NetworkInterfaceId")
    if p.get("InstanceId") and p.get("NetworkInterfaceId"):
        raise exc.InvalidParameterCombination(
            "Only one of InstanceId and NetworkInterfaceId may be given")
    with ctx.cloud.store.write() as s:
        address = _find(s, ctx.account_id, p.get("AllocationId"), p.get("PublicIp"))
        eni, inst = _target(ctx, s, p)
        private_ip = p.get("PrivateIpAddress") or (eni.private_ip if eni else inst.private_ip)
        if eni is not None and private_ip not in eni.addresses():
            raise exc.InvalidParameterValue(
                f"The private IP address {private_ip[:64]} is not assigned to the network "
                f"interface {eni.eni_id}")
        # The primary address of an instance's primary interface is the instance's public
        # address (kept on the instance); any other address maps through the interface.
        instance_level = inst is not None and private_ip == inst.private_ip and (
            eni is None or eni.device_index == 0)
        if instance_level and address.instance_id == inst.instance_id:
            return {"AssociationId": address.association_id}
        if not instance_level and (address.eni_id, address.private_ip) == (
                eni.eni_id, private_ip):
            return {"AssociationId": address.association_id}
        if address.association_id and not p.get("AllowReassociation"):
            raise exc.ResourceAlreadyAssociated(
                f"resource {address.allocation_id} is already associated with associate-id "
                f"{address.association_id}")
        vpc_id = inst.vpc_id if inst is not None else eni.vpc_id
        if s.scalar(select(models.InternetGateway).where(
                models.InternetGateway.vpc_id == vpc_id)) is None:
            raise exc.GatewayNotAttached(f"Network {vpc_id} is not attached to any internet gateway")
        _not_a_nat_gateways(s, address)
        moved = _release(ctx, s, address)
        address.association_id = ids.new("eipassoc")
        running = inst is not None and inst.state in ("pending", "running")
        if instance_level:
            for other in s.scalars(select(models.Address).where(
                    models.Address.instance_id == inst.instance_id)):
                if other is not address:  # one EIP per address
                    other.instance_id, other.association_id = None, None
            inst.public_ip = address.public_ip
            address.instance_id = inst.instance_id
        else:
            for other in s.scalars(select(models.Address).where(
                    models.Address.eni_id == eni.eni_id,
                    models.Address.private_ip == private_ip)):
                if other is not address:
                    other.eni_id, other.private_ip, other.association_id = None, None, None
            address.eni_id, address.private_ip = eni.eni_id, private_ip
        association = address.association_id
    if running or moved:
        _remap(ctx)
    return {"AssociationId": association}


def _target(ctx: RequestContext, s: Any, p: dict[str, Any]
            ) -> tuple[models.NetworkInterface | None, models.Instance | None]:
    """(the interface, the instance it is attached to) an association names."""
    if p.get("NetworkInterfaceId"):
        eni = network_interfaces.own_interface(ctx, s, p["NetworkInterfaceId"])
        inst = s.get(models.Instance, eni.instance_id) if eni.instance_id else None
        return eni, inst
    inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
    if inst.state not in ("pending", "running", "stopped", "stopping"):
        raise exc.IncorrectInstanceState(
            f"The instance '{inst.instance_id}' is not in a valid state for this operation.")
    return interfaces.primary_of(s, inst.instance_id), inst


def _release(ctx: RequestContext, s: Any, address: models.Address) -> bool:
    """Undo the address's current association; whether a running instance lost its
    public address (it gets a fresh one, as on EC2, and the host map must follow)."""
    moved = False
    if address.instance_id:
        previous = s.get(models.Instance, address.instance_id)
        if previous is not None and previous.state in ("pending", "running") \
                and previous.assign_public_ip:
            previous.public_ip = next(allocation.free_public_ips(s, ctx.cloud.config.public_pool),
                                      None)
            moved = True
        elif previous is not None:
            previous.public_ip = None
    moved = moved or address.eni_id is not None
    address.instance_id, address.association_id = None, None
    address.eni_id, address.private_ip = None, None
    return moved


def _not_a_nat_gateways(s: Any, address: models.Address) -> None:
    """A NAT gateway's Elastic IP stays with it until the gateway is deleted. AWS answers
    AuthFailure here (the address belongs to an interface AWS manages, not the caller's)."""
    eni = s.get(models.NetworkInterface, address.eni_id) if address.eni_id else None
    if eni is not None and eni.interface_type == "nat_gateway":
        raise exc.AuthFailure("You do not have permission to access the specified resource.")


@action("ec2", "DisassociateAddress")
def disassociate_address(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    running = False
    with ctx.cloud.store.write() as s:
        if p.get("AssociationId"):
            address = s.scalar(select(models.Address).where(
                models.Address.association_id == p["AssociationId"],
                models.Address.account_id == ctx.account_id))
            if address is None:
                raise exc.InvalidAssociationIDNotFound(
                    f"The association ID '{p['AssociationId'][:64]}' does not exist")
        else:
            address = _find(s, ctx.account_id, None, p.get("PublicIp"))
        _not_a_nat_gateways(s, address)
        if address.eni_id:  # mapped to an interface's address: only the map changes
            address.eni_id, address.private_ip, address.association_id = None, None, None
            running = True
        if not address.instance_id:
            if running:
                _remap(ctx)
            return {}
        inst = s.get(models.Instance, address.instance_id)
        address.instance_id, address.association_id = None, None
        if inst is None:
            return {}
        running = inst.state in ("pending", "running")
        # As on EC2: a running instance in a default subnet gets a new public address.
        inst.public_ip = next(allocation.free_public_ips(s, ctx.cloud.config.public_pool), None) \
            if running and inst.assign_public_ip else None
    if running:
        _remap(ctx)
    return {}


@action("ec2", "ReleaseAddress")
def release_address(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        address = _find(s, ctx.account_id, p.get("AllocationId"), p.get("PublicIp"))
        _not_a_nat_gateways(s, address)
        if address.instance_id or address.eni_id:
            raise exc.InvalidIPAddressInUse(f"Address {address.public_ip} is in use.")
        common.delete_with_tags(s, address)
    return {}


@action("ec2", "DescribeAddresses")
def describe_addresses(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), {"allocation-id", "association-id", "domain",
                                              "instance-id", "public-ip", "private-ip-address",
                                              "network-interface-id"})
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.Address).where(
            models.Address.account_id == ctx.account_id).order_by(models.Address.public_ip)))
        for allocation_id in p.get("AllocationIds") or []:
            _find(s, ctx.account_id, allocation_id, None)
        for public_ip in p.get("PublicIps") or []:
            _find(s, ctx.account_id, None, public_ip)
        enis = {e.eni_id: e for e in s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.eni_id.in_([r.eni_id for r in rows if r.eni_id])))}
        instances = {i.instance_id: i for i in s.scalars(select(models.Instance).where(
            models.Instance.instance_id.in_(
                [r.instance_id for r in rows if r.instance_id]
                + [e.instance_id for e in enis.values() if e.instance_id])))}
        primaries = {e.instance_id: e.eni_id for e in s.scalars(
            select(models.NetworkInterface).where(
                models.NetworkInterface.instance_id.in_(list(instances)),
                models.NetworkInterface.device_index == 0))}
        tags = common.tags_of(s, ctx.account_id, [r.allocation_id for r in rows])
    out = []
    for row in rows:
        if p.get("AllocationIds") and row.allocation_id not in p["AllocationIds"]:
            continue
        if p.get("PublicIps") and row.public_ip not in p["PublicIps"]:
            continue
        on_eni = enis.get(row.eni_id or "")
        inst = instances.get(row.instance_id or (on_eni.instance_id if on_eni else None) or "")
        eni = on_eni.eni_id if on_eni else primaries.get(inst.instance_id) if inst else None
        private_ip = row.private_ip if on_eni else inst.private_ip if inst else None
        fields = {"allocation-id": row.allocation_id, "association-id": row.association_id,
                  "domain": "vpc", "instance-id": inst.instance_id if inst else None,
                  "public-ip": row.public_ip, "private-ip-address": private_ip,
                  "network-interface-id": eni}
        if not filters.match(flt, fields, tags[row.allocation_id]):
            continue
        item: dict[str, Any] = {"PublicIp": row.public_ip, "AllocationId": row.allocation_id,
                                "Domain": "vpc", "PublicIpv4Pool": "gureum",
                                "NetworkBorderGroup": ctx.cloud.config.region,
                                "Tags": tag_list(tags[row.allocation_id]) or None}
        if row.association_id is not None:
            item.update({"InstanceId": inst.instance_id if inst else None,
                         "AssociationId": row.association_id,
                         "NetworkInterfaceId": eni, "NetworkInterfaceOwnerId": row.account_id,
                         "PrivateIpAddress": private_ip})
        out.append(item)
    return {"Addresses": out}
