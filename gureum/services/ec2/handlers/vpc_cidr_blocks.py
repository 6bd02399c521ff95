"""Secondary IPv4 CIDR blocks of a VPC (AssociateVpcCidrBlock / DisassociateVpcCidrBlock)
with AWS's restrictions. Subnets may then be made in a secondary block; the VPC's local
route covers every block (the router's bridge holds every subnet's gateway, and the host
routes every block of the VPC into its uplink)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids, ipv6, networks, peering
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers.vpcs import own_vpc
from gureum.store import models
from gureum.store.nat_models import VpcCidrBlock

MAX_BLOCKS = 5  # AWS's default quota of IPv4 CIDR blocks per VPC, the primary included
RFC1918 = {name: ipaddress.ip_network(name) for name in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")}
SHARED = ipaddress.ip_network("100.64.0.0/10")
BENCHMARK = ipaddress.ip_network("198.19.0.0/16")


def primary_association(vpc_id: str) -> str:
    return ids.derived("vpc-cidr-assoc", vpc_id)


def restricted(primary: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    """The ranges AWS refuses as a secondary block, given the VPC's primary block (its
    table "IPv4 CIDR block association restrictions")."""
    home = next((net for net in RFC1918.values() if primary.subnet_of(net)), None)
    if home is not None:  # another RFC 1918 range than the primary's
        return [net for net in RFC1918.values() if net != home] + [BENCHMARK]
    return [*RFC1918.values(), BENCHMARK]  # a 100.64/10 or publicly routable primary


def association_view(association_id: str, cidr: str, state: str) -> dict[str, Any]:
    return {"AssociationId": association_id, "CidrBlock": cidr,
            "CidrBlockState": {"State": state}}


@action("ec2", "AssociateVpcCidrBlock")
def associate_vpc_cidr_block(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv6CidrBlock") or p.get("Ipv6Pool") or p.get("Ipv6IpamPoolId") \
            or p.get("Ipv4IpamPoolId"):
        raise exc.UnsupportedOperation(
            "Only IPv4 CIDR blocks given as CidrBlock and AmazonProvidedIpv6CidrBlock are "
            "supported")
    if p.get("AmazonProvidedIpv6CidrBlock"):
        if p.get("CidrBlock"):
            raise exc.InvalidParameterCombination(
                "The parameters CidrBlock and AmazonProvidedIpv6CidrBlock cannot be combined")
        return _associate_ipv6(ctx, p)
    if not p.get("CidrBlock"):
        raise exc.MissingParameter("The request must contain the parameter CidrBlock")
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p["VpcId"])
        net = networks.check_vpc_cidr(p["CidrBlock"])
        cidr = str(net)
        primary = ipaddress.ip_network(vpc.cidr)
        if any(net.overlaps(r) for r in restricted(primary)):
            raise exc.InvalidVpcRange(
                f"The CIDR '{cidr}' is restricted. Use a CIDR from the same private address "
                "range as the current VPC CIDR, or use a publicly-routable CIDR.")
        blocks = networks.vpc_cidrs(s, vpc)
        for block in blocks:
            if net.overlaps(ipaddress.ip_network(block)):
                raise exc.InvalidVpcRange(
                    f"The CIDR '{cidr}' conflicts with another subnet or CIDR block of "
                    f"{vpc.vpc_id} ({block})")
        for pcx in peering.active_of_vpc(s, vpc.vpc_id):
            peer = pcx.accepter_cidr if pcx.requester_vpc_id == vpc.vpc_id else pcx.requester_cidr
            if net.overlaps(ipaddress.ip_network(peer)):
                raise exc.CidrConflict(
                    f"The CIDR '{cidr}' overlaps with the CIDR '{peer}' of a VPC peered "
                    f"through {pcx.peering_id}")
        if len(blocks) >= MAX_BLOCKS:
            raise exc.CidrLimitExceeded(
                f"This network '{vpc.vpc_id}' has met its maximum number of allowed CIDRs: "
                f"{MAX_BLOCKS}")
        block = VpcCidrBlock(association_id=ids.new("vpc-cidr-assoc"), vpc_id=vpc.vpc_id,
                             cidr=cidr, state="associated")
        s.add(block)
        # AWS answers "associating" and turns it "associated" moments later; here the
        # row is associated when the call returns, the answer says what AWS says.
        return {"VpcId": vpc.vpc_id,
                "CidrBlockAssociation": association_view(block.association_id, cidr,
                                                         "associating")}


def _associate_ipv6(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    """The VPC's Amazon-provided /56 (one per VPC here)."""
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p["VpcId"])
        if vpc.ipv6_cidr is not None:
            raise exc.CidrLimitExceeded(
                f"This network '{vpc.vpc_id}' has met its maximum number of allowed "
                "Amazon-provided IPv6 CIDRs: 1")
        vpc.ipv6_cidr = ipv6.allocate_vpc_block(s, ctx.cloud.config.ipv6_pool, vpc.vpc_id)
        vpc.ipv6_association_id = ipv6.new_vpc_association()
        sg.allow_ipv6_egress(s, ctx.account_id, networks.default_group_id(
            ctx.account_id, vpc.vpc_id, vpc.is_default))
        return {"VpcId": vpc.vpc_id, "Ipv6CidrBlockAssociation": ipv6.block_view(
            vpc.ipv6_association_id, vpc.ipv6_cidr, "associating", ctx.cloud.config.region)}


def _has_subnets(vpc_id: str, cidr: str | None) -> exc.InvalidCidrBlockInUse:
    """AWS's answer to disassociating a block (either family) that subnets still use."""
    return exc.InvalidCidrBlockInUse(
        f"The vpc {vpc_id} currently has a subnet within CIDR block {cidr}")


def _disassociate_ipv6(ctx: RequestContext, s: Any, vpc: models.Vpc) -> dict[str, Any]:
    used = s.scalar(select(models.Subnet.subnet_id).where(
        models.Subnet.vpc_id == vpc.vpc_id, models.Subnet.ipv6_cidr.is_not(None)).limit(1))
    if used is not None:
        raise _has_subnets(vpc.vpc_id, vpc.ipv6_cidr)
    association_id, cidr = vpc.ipv6_association_id, vpc.ipv6_cidr
    vpc.ipv6_cidr = vpc.ipv6_association_id = None
    return {"VpcId": vpc.vpc_id, "Ipv6CidrBlockAssociation": ipv6.block_view(
        association_id, cidr, "disassociating", ctx.cloud.config.region)}


@action("ec2", "DisassociateVpcCidrBlock")
def disassociate_vpc_cidr_block(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    association_id = p["AssociationId"]
    with ctx.cloud.store.write() as s:
        owner = s.scalar(select(models.Vpc).where(
            models.Vpc.ipv6_association_id == association_id))
        if owner is not None and owner.account_id == ctx.account_id:
            return _disassociate_ipv6(ctx, s, owner)
        block = s.get(VpcCidrBlock, association_id)
        vpc = s.get(models.Vpc, block.vpc_id) if block is not None else None
        if vpc is None:
            primary = s.scalar(select(models.Vpc).where(
                models.Vpc.account_id == ctx.account_id).where(
                models.Vpc.vpc_id.in_(_vpc_ids(s, ctx.account_id, association_id))))
            if primary is not None:
                raise exc.OperationNotPermitted(
                    f"The vpc CIDR block with association ID {association_id} may not be "
                    "disassociated. It is the primary IPv4 CIDR block of the VPC")
            raise exc.InvalidCidrBlockAssociationIDNotFound(
                f"The vpc CIDR block association ID '{association_id[:64]}' does not exist")
        if vpc.account_id != ctx.account_id:
            raise exc.InvalidCidrBlockAssociationIDNotFound(
                f"The vpc CIDR block association ID '{association_id[:64]}' does not exist")
        net = ipaddress.ip_network(block.cidr)
        used = [sub.subnet_id for sub in s.scalars(select(models.Subnet).where(
            models.Subnet.vpc_id == vpc.vpc_id)) if ipaddress.ip_network(sub.cidr).subnet_of(net)]
        if used:
            raise _has_subnets(vpc.vpc_id, block.cidr)
        routes = s.scalar(select(models.Route.destination).where(
            models.Route.route_table_id.in_(select(models.RouteTable.route_table_id).where(
                models.RouteTable.vpc_id == vpc.vpc_id)),
            models.Route.destination == block.cidr).limit(1))
        if routes is not None:
            raise exc.DependencyViolation(
                f"The vpc CIDR block {block.cidr} is the destination of a route")
        cidr = block.cidr
        s.execute(delete(VpcCidrBlock).where(VpcCidrBlock.association_id == association_id))
        return {"VpcId": vpc.vpc_id,
                "CidrBlockAssociation": association_view(association_id, cidr,
                                                         "disassociating")}


def _vpc_ids(s: Any, account_id: str, association_id: str) -> list[str]:
    """The account's VPCs whose primary association has this id (ids are derived)."""
    return [v for v in s.scalars(select(models.Vpc.vpc_id).where(
        models.Vpc.account_id == account_id)) if primary_association(v) == association_id]
