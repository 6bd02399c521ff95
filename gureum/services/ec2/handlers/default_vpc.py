"""CreateDefaultVpc and CreateDefaultSubnet. An account's default VPC, with a default
subnet in the region's one zone, is made on the account's first use and cannot be
deleted here (DeleteVpc refuses it), so these make it when it is not there yet and
otherwise answer as AWS does when one exists."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.vpcs import _subnet_view, _vpc_view
from gureum.store import models


def _existed(ctx: RequestContext, model: type[Any], resource_id: str) -> bool:
    with ctx.cloud.store.read() as s:
        found = s.get(model, resource_id) is not None
    ctx.cloud.ensure_default_network(ctx.account_id)
    return found


@action("ec2", "CreateDefaultVpc")
def create_default_vpc(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    vpc_id = ctx.cloud.default_vpc_id(ctx.account_id)
    if _existed(ctx, models.Vpc, vpc_id):
        raise exc.DefaultVpcAlreadyExists("A Default VPC already exists for this account in "
                                          "this region.")
    with ctx.cloud.store.read() as s:
        vpc = s.get(models.Vpc, vpc_id)
        return {"Vpc": _vpc_view(vpc, common.tags_of(s, ctx.account_id, [vpc_id])[vpc_id])}


@action("ec2", "CreateDefaultSubnet")
def create_default_subnet(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    zone = p.get("AvailabilityZone") or p.get("AvailabilityZoneId")
    if zone not in (ctx.cloud.availability_zone, ctx.region + "-az1"):
        raise exc.InvalidParameterValue(f"Value ({str(zone)[:32]}) for parameter "
                                        "availabilityZone is invalid.")
    subnet_id = ctx.cloud.default_subnet_id(ctx.account_id)
    if _existed(ctx, models.Subnet, subnet_id):
        raise exc.DefaultSubnetAlreadyExistsInAvailabilityZone(
            f"Default subnet already exists in availability zone {ctx.cloud.availability_zone}.")
    with ctx.cloud.store.read() as s:
        subnet = s.get(models.Subnet, subnet_id)
        return {"Subnet": _subnet_view(s, subnet, common.tags_of(
            s, ctx.account_id, [subnet_id])[subnet_id], ctx.region)}
