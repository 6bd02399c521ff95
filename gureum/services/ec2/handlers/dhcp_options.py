"""DHCP options sets: Create/Associate/Describe/DeleteDhcpOptions. What a set says
reaches instances through the VPC services controller (pushed to running instances,
written at every boot)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import dhcp_options as dhcp
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.vpcs import own_vpc
from gureum.services.ec2.views import tag_list
from gureum.store import models
from gureum.store.vpc_options_models import DhcpOptions


def _not_found(dhcp_options_id: str) -> Exception:
    return exc.InvalidDhcpOptionIDNotFound(
        f"The dhcpOption ID '{dhcp_options_id[:64]}' does not exist")


def _view(options: DhcpOptions, tags: dict[str, str]) -> dict[str, Any]:
    return {"DhcpOptionsId": options.dhcp_options_id, "OwnerId": options.account_id,
            "DhcpConfigurations": [{"Key": key, "Values": [{"Value": v} for v in values]}
                                   for key, values in sorted(options.configurations.items())],
            "Tags": tag_list(tags) or None}


def _ensure_default_set(ctx: RequestContext) -> None:
    with ctx.cloud.store.read() as s:
        if s.get(DhcpOptions, dhcp.default_id(ctx.account_id)) is not None:
            return
    with ctx.cloud.store.write() as s:
        dhcp.ensure_default_set(s, ctx.account_id, ctx.cloud.config.region)


def own_dhcp_options(ctx: RequestContext, s: Any, dhcp_options_id: str | None) -> DhcpOptions:
    if not dhcp_options_id:
        raise exc.MissingParameter("The request must contain the parameter DhcpOptionsId")
    ids.require(dhcp_options_id, "dopt", exc.InvalidDhcpOptionsIdMalformed)
    return common.owned(s, ctx.account_id, DhcpOptions, dhcp_options_id, _not_found)


@action("ec2", "CreateDhcpOptions")
def create_dhcp_options(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    configurations = dhcp.parse_configurations(p.get("DhcpConfigurations") or [])
    tags = common.tags_from_specs(p, "dhcp-options")
    _ensure_default_set(ctx)
    with ctx.cloud.store.write() as s:
        options = DhcpOptions(dhcp_options_id=ids.new("dopt"), account_id=ctx.account_id,
                              configurations=configurations)
        s.add(options)
        s.flush()
        common.put_tags(s, ctx.account_id, options.dhcp_options_id, tags)
        return {"DhcpOptions": _view(options, dict(tags))}


@action("ec2", "AssociateDhcpOptions")
def associate_dhcp_options(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    _ensure_default_set(ctx)
    with ctx.cloud.store.write() as s:
        wanted = p.get("DhcpOptionsId") or ""
        if wanted != dhcp.NO_OPTIONS:
            wanted = own_dhcp_options(ctx, s, wanted).dhcp_options_id
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        vpc.dhcp_options_id = wanted
    return {}


@action("ec2", "DescribeDhcpOptions")
def describe_dhcp_options(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _ensure_default_set(ctx)
    for wanted in p.get("DhcpOptionsIds") or []:
        ids.require(wanted, "dopt", exc.InvalidDhcpOptionsIdMalformed)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(DhcpOptions).where(
            DhcpOptions.account_id == ctx.account_id).order_by(DhcpOptions.created_at)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="DhcpOptionsIds",
            id_of=lambda o: o.dhcp_options_id, not_found=_not_found,
            filters_allowed={"dhcp-options-id", "key", "value", "owner-id"},
            fields=lambda o: {"dhcp-options-id": o.dhcp_options_id,
                              "key": list(o.configurations),
                              "value": [v for vs in o.configurations.values() for v in vs],
                              "owner-id": o.account_id},
            view=_view, result_key="DhcpOptions")


@action("ec2", "DeleteDhcpOptions")
def delete_dhcp_options(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _ensure_default_set(ctx)
    with ctx.cloud.store.write() as s:
        options = own_dhcp_options(ctx, s, p.get("DhcpOptionsId"))
        using = models.Vpc.dhcp_options_id == options.dhcp_options_id
        if options.dhcp_options_id == dhcp.default_id(ctx.account_id):
            using = or_(using, models.Vpc.dhcp_options_id.is_(None))
        if s.scalar(select(func.count()).select_from(models.Vpc).where(
                models.Vpc.account_id == ctx.account_id, using)):
            raise exc.DependencyViolation(
                f"The dhcpOptions '{options.dhcp_options_id}' has dependencies and cannot "
                "be deleted.")
        common.delete_with_tags(s, options)
    return {}
