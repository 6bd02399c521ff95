"""VPC peering connections: Create/Accept/Reject/Delete/DescribeVpcPeeringConnections.
The requester's account creates, the accepter VPC's account accepts or rejects, either
deletes. Routes to an active connection are made with CreateRoute (routing.py); the
network controller links the two routers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2 import peering as pc
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.vpcs import own_vpc, vpc_not_found
from gureum.store import models
from gureum.store.vpc_options_models import VpcPeeringConnection

EXPIRES_AFTER = dt.timedelta(days=7)


def _view(ctx: RequestContext, s: Any, pcx: VpcPeeringConnection) -> dict[str, Any]:  # noqa: ANN401
    tags = common.tags_of(s, ctx.account_id, [pcx.peering_id])[pcx.peering_id]
    return pc.view(pcx, tags, ctx.cloud.config.region)


def _set_status(pcx: VpcPeeringConnection, status: str, actor: str) -> None:
    pcx.status = status
    pcx.status_message = pc.MESSAGES[status].format(accepter=pcx.accepter_account_id,
                                                    actor=actor)


@action("ec2", "CreateVpcPeeringConnection")
def create_vpc_peering_connection(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("PeerRegion") not in (None, ctx.cloud.config.region):
        raise exc.UnsupportedOperation("Peering with another region is not supported here")
    if not p.get("PeerVpcId"):
        raise exc.MissingParameter("The request must contain the parameter PeerVpcId")
    tags = common.tags_from_specs(p, "vpc-peering-connection")
    owner = p.get("PeerOwnerId") or ctx.account_id
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        peer = s.get(models.Vpc, p["PeerVpcId"])
        if peer is None or peer.account_id != owner:
            raise vpc_not_found(p["PeerVpcId"])
        if peer.vpc_id == vpc.vpc_id:
            raise exc.InvalidParameterValue("A VPC cannot be peered with itself")
        pcx = VpcPeeringConnection(
            peering_id=ids.new("pcx"), account_id=ctx.account_id, requester_vpc_id=vpc.vpc_id,
            requester_cidr=vpc.cidr, accepter_account_id=owner, accepter_vpc_id=peer.vpc_id,
            accepter_cidr=peer.cidr, status="", expires_at=models.utcnow() + EXPIRES_AFTER)
        # As on AWS: the request is made, and fails at once when the ranges overlap.
        _set_status(pcx, "failed" if pc.overlap(vpc.cidr, peer.cidr) else "pending-acceptance",
                    ctx.account_id)
        s.add(pcx)
        s.flush()
        common.put_tags(s, ctx.account_id, pcx.peering_id, tags)
        return {"VpcPeeringConnection": pc.view(pcx, dict(tags), ctx.cloud.config.region)}


def _pending_for_accepter(ctx: RequestContext, s: Any, p: dict[str, Any]) -> VpcPeeringConnection:  # noqa: ANN401
    pcx = pc.visible(s, ctx.account_id, p.get("VpcPeeringConnectionId"))
    if pcx.status != "pending-acceptance":
        raise exc.InvalidStateTransition(
            f"Invalid state transition for {pcx.peering_id}, attempted to transition from "
            f"{pcx.status}")
    if pcx.accepter_account_id != ctx.account_id:
        raise exc.OperationNotPermitted(
            f"User {ctx.account_id} cannot accept peering {pcx.peering_id}")
    if pcx.expires_at is not None and pcx.expires_at < models.utcnow():
        raise exc.InvalidStateTransition(f"The peering {pcx.peering_id} has expired")
    return pcx


@action("ec2", "AcceptVpcPeeringConnection")
def accept_vpc_peering_connection(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        pcx = _pending_for_accepter(ctx, s, p)
        _set_status(pcx, "active", ctx.account_id)
        return {"VpcPeeringConnection": _view(ctx, s, pcx)}


@action("ec2", "RejectVpcPeeringConnection")
def reject_vpc_peering_connection(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        pcx = _pending_for_accepter(ctx, s, p)
        _set_status(pcx, "rejected", ctx.account_id)
    return {"Return": True}


@action("ec2", "DeleteVpcPeeringConnection")
def delete_vpc_peering_connection(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        pcx = pc.visible(s, ctx.account_id, p.get("VpcPeeringConnectionId"))
        if pcx.status not in pc.LIVE and pcx.status != "failed":
            raise exc.InvalidStateTransition(
                f"Invalid state transition for {pcx.peering_id}, attempted to transition from "
                f"{pcx.status} to deleted")
        # Routes to it stay, as blackholes (DescribeRouteTables says so), as on AWS.
        _set_status(pcx, "deleted", ctx.account_id)
    return {"Return": True}


@action("ec2", "DescribeVpcPeeringConnections")
def describe_vpc_peering_connections(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for wanted in p.get("VpcPeeringConnectionIds") or []:
        ids.require(wanted, "pcx", exc.InvalidVpcPeeringConnectionIdMalformed)
    region = ctx.cloud.config.region
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(VpcPeeringConnection).where(or_(
            VpcPeeringConnection.account_id == ctx.account_id,
            VpcPeeringConnection.accepter_account_id == ctx.account_id))
            .order_by(VpcPeeringConnection.created_at)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="VpcPeeringConnectionIds",
            id_of=lambda r: r.peering_id, not_found=pc.not_found,
            filters_allowed={"vpc-peering-connection-id", "status-code", "status-message",
                             "requester-vpc-info.vpc-id", "requester-vpc-info.owner-id",
                             "requester-vpc-info.cidr-block", "accepter-vpc-info.vpc-id",
                             "accepter-vpc-info.owner-id", "accepter-vpc-info.cidr-block",
                             "expiration-time"},
            fields=lambda r: {"vpc-peering-connection-id": r.peering_id, "status-code": r.status,
                              "status-message": r.status_message,
                              "requester-vpc-info.vpc-id": r.requester_vpc_id,
                              "requester-vpc-info.owner-id": r.account_id,
                              "requester-vpc-info.cidr-block": r.requester_cidr,
                              "accepter-vpc-info.vpc-id": r.accepter_vpc_id,
                              "accepter-vpc-info.owner-id": r.accepter_account_id,
                              "accepter-vpc-info.cidr-block": r.accepter_cidr},
            view=lambda r, tags: pc.view(r, tags, region), result_key="VpcPeeringConnections")
