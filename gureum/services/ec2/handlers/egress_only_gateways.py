"""Egress-only internet gateways: made attached to a VPC, the target of IPv6 routes
(DestinationIpv6CidrBlock ::/0 and the like). On the host the router routes such a
subnet's IPv6 traffic for outside the VPC to its uplink, where it is dropped: IPv6 has
no path beyond the router here (see ARCHITECTURE's "IPv6 in the VPC")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.vpcs import own_vpc
from gureum.services.ec2.views import tag_list
from gureum.store import models


def not_found(gateway_id: str) -> exc.ApiError:
    return exc.InvalidEgressOnlyInternetGatewayIdNotFound(
        f"The egress-only internet gateway ID '{gateway_id[:64]}' does not exist")


def _view(gateway: models.EgressOnlyInternetGateway, tags: dict[str, str]) -> dict[str, Any]:
    return {"EgressOnlyInternetGatewayId": gateway.gateway_id,
            "Attachments": [{"State": "attached", "VpcId": gateway.vpc_id}],
            "Tags": tag_list(tags) or None}


@action("ec2", "CreateEgressOnlyInternetGateway")
def create_egress_only_internet_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = common.tags_from_specs(p, "egress-only-internet-gateway")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        gateway = models.EgressOnlyInternetGateway(
            gateway_id=ids.new("eigw"), account_id=ctx.account_id, vpc_id=vpc.vpc_id)
        s.add(gateway)
        s.flush()
        common.put_tags(s, ctx.account_id, gateway.gateway_id, tags)
        return {"EgressOnlyInternetGateway": _view(gateway, dict(tags)),
                "ClientToken": p.get("ClientToken")}


@action("ec2", "DescribeEgressOnlyInternetGateways")
def describe_egress_only_internet_gateways(ctx: RequestContext,
                                           p: dict[str, Any]) -> dict[str, Any]:
    for gateway_id in p.get("EgressOnlyInternetGatewayIds") or []:
        ids.require(gateway_id, "eigw", exc.InvalidEgressOnlyInternetGatewayIdMalformed)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.EgressOnlyInternetGateway).where(
            models.EgressOnlyInternetGateway.account_id == ctx.account_id).order_by(
                models.EgressOnlyInternetGateway.created_at)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="EgressOnlyInternetGatewayIds",
            id_of=lambda g: g.gateway_id, not_found=not_found, filters_allowed=set(),
            fields=lambda g: {}, view=_view, result_key="EgressOnlyInternetGateways")


@action("ec2", "DeleteEgressOnlyInternetGateway")
def delete_egress_only_internet_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    gateway_id = p["EgressOnlyInternetGatewayId"]
    ids.require(gateway_id, "eigw", exc.InvalidEgressOnlyInternetGatewayIdMalformed)
    with ctx.cloud.store.write() as s:
        gateway = common.owned(s, ctx.account_id, models.EgressOnlyInternetGateway, gateway_id,
                               not_found)
        # As AWS: routes to it stay, and show as blackhole.
        common.delete_with_tags(s, gateway)
    return {"ReturnCode": True}
