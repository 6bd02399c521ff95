"""NAT gateways: an interface of their subnet (interface type nat_gateway) holding, when
public, an Elastic IP. A route with NatGatewayId sends its subnets' traffic there; the
VPC's router translates it to the gateway's address (`route_targets`, `agent/network.py`).
States as AWS's: pending -> available (the network controller's next pass) -> deleting
-> deleted (its interface goes and its Elastic IP is free again)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import allocation, ids
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.network_interfaces import _in_subnet
from gureum.services.ec2.handlers.vpcs import own_subnet
from gureum.services.ec2.views import tag_list
from gureum.store import models
from gureum.store.nat_models import NatGateway

GONE_AFTER = dt.timedelta(hours=1)  # AWS describes a deleted gateway for about an hour
UNSUPPORTED = ("VpcId", "AvailabilityMode", "AvailabilityZoneAddresses",
               "SecondaryAllocationIds", "SecondaryPrivateIpAddresses",
               "SecondaryPrivateIpAddressCount")


def not_found(nat_id: str) -> exc.ApiError:
    return exc.NatGatewayNotFound(f"NAT gateway {nat_id[:64]} was not found")


def view(s: Any, nat: NatGateway, tags: dict[str, str]) -> dict[str, Any]:
    address = s.get(models.Address, nat.allocation_id) if nat.allocation_id else None
    entry: dict[str, Any] = {"NetworkInterfaceId": nat.eni_id, "PrivateIp": nat.private_ip,
                             "IsPrimary": True,
                             "Status": "succeeded" if nat.state != "deleted" else "disassociated"}
    if address is not None:
        entry.update({"AllocationId": address.allocation_id, "PublicIp": address.public_ip,
                      "AssociationId": address.association_id})
    return {"NatGatewayId": nat.nat_gateway_id, "SubnetId": nat.subnet_id,
            "VpcId": nat.vpc_id, "State": nat.state, "CreateTime": nat.created_at,
            "DeleteTime": nat.deleted_at, "ConnectivityType": nat.connectivity_type,
            "NatGatewayAddresses": [entry], "Tags": tag_list(tags) or None}


@action("ec2", "CreateNatGateway")
def create_nat_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for member in UNSUPPORTED:
        if p.get(member):
            raise exc.UnsupportedOperation(f"{member} is not supported: NAT gateways here are "
                                           "zonal, with one address")
    if not p.get("SubnetId"):
        raise exc.MissingParameter("The request must contain the parameter SubnetId")
    kind = p.get("ConnectivityType") or "public"
    if kind == "public" and not p.get("AllocationId"):
        raise exc.MissingParameter("A public NAT gateway needs an AllocationId (an Elastic IP)")
    if kind == "private" and p.get("AllocationId"):
        raise exc.InvalidParameterCombination(
            "A private NAT gateway cannot have an Elastic IP address (AllocationId)")
    tags = common.tags_from_specs(p, "natgateway")
    with ctx.cloud.store.write() as s:
        subnet = own_subnet(ctx, s, p["SubnetId"])
        address = None
        if p.get("AllocationId"):
            address = s.get(models.Address, p["AllocationId"])
            if address is None or address.account_id != ctx.account_id:
                raise exc.InvalidAllocationIDNotFound(
                    f"The allocation ID '{p['AllocationId'][:64]}' does not exist")
            if address.association_id:
                raise exc.ResourceAlreadyAssociated(
                    f"Elastic IP address [{address.allocation_id}] is already associated")
        if p.get("PrivateIpAddress"):
            private_ip = _in_subnet(subnet, p["PrivateIpAddress"])
            if private_ip not in set(allocation.free_private_ips(s, subnet.vpc_id, subnet.cidr)):
                raise exc.InvalidIPAddressInUse(f"Address {private_ip} is in use.")
        else:
            private_ip = next(allocation.free_private_ips(s, subnet.vpc_id, subnet.cidr), None)
            if private_ip is None:
                raise exc.InsufficientFreeAddressesInSubnet(
                    f"Subnet {subnet.subnet_id} has no free addresses")
        nat_id = ids.new("nat")
        eni = models.NetworkInterface(
            eni_id=ids.new("eni"), account_id=ctx.account_id, vpc_id=subnet.vpc_id,
            subnet_id=subnet.subnet_id, availability_zone=subnet.availability_zone,
            private_ip=private_ip, secondary_ips=[], security_group_ids=[],
            description=f"Interface for NAT Gateway {nat_id}", source_dest_check=False,
            mac_address=_mac(private_ip), status="in-use", interface_type="nat_gateway")
        s.add(eni)
        if address is not None:
            address.association_id = ids.new("eipassoc")
            address.eni_id, address.private_ip = eni.eni_id, private_ip
        nat = NatGateway(nat_gateway_id=nat_id, account_id=ctx.account_id,
                         vpc_id=subnet.vpc_id, subnet_id=subnet.subnet_id,
                         connectivity_type=kind, allocation_id=address.allocation_id
                         if address is not None else None, eni_id=eni.eni_id,
                         private_ip=private_ip, state="pending")
        s.add(nat)
        s.flush()
        common.put_tags(s, ctx.account_id, nat_id, tags)
        return {"ClientToken": p.get("ClientToken"), "NatGateway": view(s, nat, dict(tags))}


def _mac(address: str) -> str:
    from gureum.agent.network import mac_for

    return mac_for(address)


@action("ec2", "DescribeNatGateways")
def describe_nat_gateways(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for nat_id in p.get("NatGatewayIds") or []:
        ids.require(nat_id, "nat", exc.NatGatewayMalformed)
    with ctx.cloud.store.read() as s:
        now = dt.datetime.now(dt.UTC)
        rows = [n for n in s.scalars(select(NatGateway).where(
            NatGateway.account_id == ctx.account_id).order_by(NatGateway.created_at))
            if n.deleted_at is None or now - n.deleted_at < GONE_AFTER]
        return common.describe(
            s, ctx.account_id, {**p, "Filters": p.get("Filter")}, rows,
            id_param="NatGatewayIds", id_of=lambda n: n.nat_gateway_id, not_found=not_found,
            filters_allowed={"nat-gateway-id", "state", "subnet-id", "vpc-id"},
            fields=lambda n: {"nat-gateway-id": n.nat_gateway_id, "state": n.state,
                              "subnet-id": n.subnet_id, "vpc-id": n.vpc_id},
            view=lambda n, tags: view(s, n, tags), result_key="NatGateways")


@action("ec2", "DeleteNatGateway")
def delete_nat_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ids.require(p["NatGatewayId"], "nat", exc.NatGatewayMalformed)
    with ctx.cloud.store.write() as s:
        nat = s.get(NatGateway, p["NatGatewayId"])
        if nat is None or nat.account_id != ctx.account_id or nat.state == "deleted":
            raise not_found(p["NatGatewayId"])
        if nat.state != "deleting":
            nat.state = "deleting"
    return {"NatGatewayId": p["NatGatewayId"]}


def moving(s: Any) -> bool:
    return s.scalar(select(NatGateway.nat_gateway_id).where(
        NatGateway.state.in_(("pending", "deleting"))).limit(1)) is not None


def advance(s: Any) -> bool:
    """The network controller's step: pending gateways become available (their routes'
    rules follow in the same pass), deleting ones deleted, their interface removed and
    their Elastic IP free. Whether anything changed."""
    changed = False
    for nat in s.scalars(select(NatGateway).where(NatGateway.state.in_(("pending", "deleting")))):
        changed = True
        if nat.state == "pending":
            nat.state = "available"
            continue
        nat.state, nat.deleted_at = "deleted", dt.datetime.now(dt.UTC)
        for address in s.scalars(select(models.Address).where(
                models.Address.eni_id == nat.eni_id)):
            address.eni_id, address.private_ip, address.association_id = None, None, None
        eni = s.get(models.NetworkInterface, nat.eni_id) if nat.eni_id else None
        if eni is not None:
            common.delete_with_tags(s, eni)
    return changed
