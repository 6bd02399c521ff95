"""A subnet's IPv6 /64 (AssociateSubnetCidrBlock / DisassociateSubnetCidrBlock): one
block per subnet, inside its VPC's /56. A block whose addresses are in use by an
interface stays until they are unassigned, as on AWS."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids, ipv6
from gureum.services.ec2.handlers.vpcs import own_subnet
from gureum.store import models


@action("ec2", "AssociateSubnetCidrBlock")
def associate_subnet_cidr_block(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv6IpamPoolId") or p.get("Ipv6NetmaskLength"):
        raise exc.UnsupportedOperation("Only an Ipv6CidrBlock given by value is supported")
    if not p.get("Ipv6CidrBlock"):
        raise exc.MissingParameter("The request must contain the parameter Ipv6CidrBlock")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        subnet = own_subnet(ctx, s, p["SubnetId"])
        vpc = s.get(models.Vpc, subnet.vpc_id)
        assert vpc is not None
        if subnet.ipv6_cidr is not None:
            raise exc.CidrLimitExceeded(
                f"Subnet {subnet.subnet_id} already has an IPv6 CIDR block "
                f"({subnet.ipv6_cidr})")
        subnet.ipv6_cidr = ipv6.check_subnet_block(s, vpc, p["Ipv6CidrBlock"],
                                                   subnet.subnet_id)
        subnet.ipv6_association_id = ids.new("subnet-cidr-assoc")
        return {"SubnetId": subnet.subnet_id, "Ipv6CidrBlockAssociation": ipv6.block_view(
            subnet.ipv6_association_id, subnet.ipv6_cidr, "associating")}


@action("ec2", "DisassociateSubnetCidrBlock")
def disassociate_subnet_cidr_block(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    association_id = p["AssociationId"]
    with ctx.cloud.store.write() as s:
        subnet = s.scalar(select(models.Subnet).where(
            models.Subnet.ipv6_association_id == association_id))
        if subnet is None or subnet.account_id != ctx.account_id:
            raise exc.InvalidSubnetCidrBlockAssociationIDNotFound(
                f"The subnet CIDR block association ID '{association_id[:64]}' does not exist")
        if ipv6.used_addresses(s, subnet.subnet_id):
            raise exc.DependencyViolation(
                f"The IPv6 CIDR block {subnet.ipv6_cidr} of {subnet.subnet_id} has addresses "
                "assigned to network interfaces and cannot be disassociated.")
        cidr = subnet.ipv6_cidr
        subnet.ipv6_cidr = subnet.ipv6_association_id = None
        subnet.assign_ipv6_on_creation = False
        return {"SubnetId": subnet.subnet_id, "Ipv6CidrBlockAssociation": ipv6.block_view(
            association_id, cidr, "disassociating")}
