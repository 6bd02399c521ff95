"""VPC peering: the connection's life (pending-acceptance -> active, or rejected,
failed for overlapping CIDRs, deleted) and what an active one means on the host: each
side's router gets a link to the other and lets into it only what its route tables send
there (`contract.PeeringLink`)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.agent.contract import PeeringLink, PeeringRoute
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.store import models
from gureum.store.vpc_options_models import VpcPeeringConnection

# Statuses AWS still describes; a deleted or rejected connection stays visible a while.
LIVE = ("pending-acceptance", "active")
MESSAGES = {"pending-acceptance": "Pending Acceptance by {accepter}", "active": "Active",
            "rejected": "Rejected by {accepter}", "deleted": "Deleted by {actor}",
            "failed": "Failed due to incorrect VPC-ID, Account ID, or overlapping CIDR range"}


def not_found(peering_id: str) -> Exception:
    return exc.InvalidVpcPeeringConnectionIDNotFound(
        f"The vpcPeeringConnection ID '{peering_id[:64]}' does not exist")


def visible(session: Session, account_id: str, peering_id: str | None) -> VpcPeeringConnection:
    """A connection either side's account may see and act on."""
    if not peering_id:
        raise exc.MissingParameter("The request must contain the parameter VpcPeeringConnectionId")
    ids.require(peering_id, "pcx", exc.InvalidVpcPeeringConnectionIdMalformed)
    row = session.get(VpcPeeringConnection, peering_id)
    if row is None or account_id not in (row.account_id, row.accepter_account_id):
        raise not_found(peering_id)
    return row


def overlap(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def view(pcx: VpcPeeringConnection, tags: dict[str, str], region: str) -> dict[str, Any]:
    def side(account: str, vpc_id: str, cidr: str) -> dict[str, Any]:
        return {"CidrBlock": cidr, "CidrBlockSet": [{"CidrBlock": cidr}], "OwnerId": account,
                "VpcId": vpc_id, "Region": region,
                "PeeringOptions": {"AllowDnsResolutionFromRemoteVpc": False,
                                   "AllowEgressFromLocalClassicLinkToRemoteVpc": False,
                                   "AllowEgressFromLocalVpcToRemoteClassicLink": False}}

    return {"VpcPeeringConnectionId": pcx.peering_id,
            "RequesterVpcInfo": side(pcx.account_id, pcx.requester_vpc_id, pcx.requester_cidr),
            "AccepterVpcInfo": side(pcx.accepter_account_id, pcx.accepter_vpc_id,
                                    pcx.accepter_cidr),
            "Status": {"Code": pcx.status, "Message": pcx.status_message},
            "ExpirationTime": pcx.expires_at if pcx.status == "pending-acceptance" else None,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())] or None}


def active_of_vpc(session: Session, vpc_id: str) -> list[VpcPeeringConnection]:
    return list(session.scalars(select(VpcPeeringConnection).where(
        VpcPeeringConnection.status == "active",
        or_(VpcPeeringConnection.requester_vpc_id == vpc_id,
            VpcPeeringConnection.accepter_vpc_id == vpc_id))))


def links(session: Session, vpc: models.Vpc) -> tuple[PeeringLink, ...]:
    """The host's view of the VPC's active peerings and the routes that use them."""
    active = active_of_vpc(session, vpc.vpc_id)
    if not active:
        return ()
    tables = {t.route_table_id: t for t in session.scalars(select(models.RouteTable).where(
        models.RouteTable.vpc_id == vpc.vpc_id))}
    main = next((t.route_table_id for t in tables.values() if t.is_main), None)
    explicit = {a.subnet_id: a.route_table_id for a in session.scalars(
        select(models.RouteTableAssociation).where(
            models.RouteTableAssociation.route_table_id.in_(list(tables))))}
    subnets_of: dict[str, list[str]] = {}
    for subnet in session.scalars(select(models.Subnet).where(
            models.Subnet.vpc_id == vpc.vpc_id).order_by(models.Subnet.cidr)):
        subnets_of.setdefault(explicit.get(subnet.subnet_id, main or ""), []).append(subnet.cidr)
    routes = list(session.scalars(select(models.Route).where(
        models.Route.route_table_id.in_(list(tables)),
        models.Route.gateway_id.in_([p.peering_id for p in active]))))
    out = []
    for pcx in sorted(active, key=lambda p: p.peering_id):
        requester = pcx.requester_vpc_id == vpc.vpc_id
        gates: dict[str, set[str]] = {}
        for route in routes:
            if route.gateway_id == pcx.peering_id:
                gates.setdefault(route.destination, set()).update(
                    subnets_of.get(route.route_table_id, []))
        out.append(PeeringLink(
            peering_id=pcx.peering_id,
            peer_vpc_id=pcx.accepter_vpc_id if requester else pcx.requester_vpc_id,
            peer_cidr=pcx.accepter_cidr if requester else pcx.requester_cidr,
            requester=requester,
            routes=tuple(PeeringRoute(dest, tuple(sorted(srcs)))
                         for dest, srcs in sorted(gates.items()) if srcs)))
    return tuple(out)
