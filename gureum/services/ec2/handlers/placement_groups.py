"""Placement groups: Create/Describe/DeletePlacementGroup. `spread` puts each instance of
the group on a different host (none left: InsufficientInstanceCapacity), `cluster` keeps
them on one host; RunInstances' Placement.GroupName/GroupId names the group
(hosts/placement.py decides)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2.handlers import common
from gureum.store import models
from gureum.store.host_models import PlacementGroup

STRATEGIES = ("cluster", "spread")
HOLDING = ("pending", "running", "stopping", "shutting-down", "stopped")


def _arn(ctx: RequestContext, group: PlacementGroup) -> str:
    return f"arn:aws:ec2:{ctx.region}:{group.account_id}:placement-group/{group.name}"


def _view(ctx: RequestContext, group: PlacementGroup, tags: dict[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "GroupName": group.name, "GroupId": group.group_id, "State": group.state,
        "Strategy": group.strategy, "GroupArn": _arn(ctx, group),
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    if group.strategy == "spread":
        view["SpreadLevel"] = "host"
    return view


def _unknown(name: str) -> exc.InvalidPlacementGroupUnknown:
    return exc.InvalidPlacementGroupUnknown(f"The Placement Group '{name}' is unknown.")


@action("ec2", "CreatePlacementGroup")
def create_placement_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name, strategy = p.get("GroupName"), p.get("Strategy")
    if not name:
        raise exc.MissingParameter("The request must contain the parameter groupName")
    if len(name) > 255:
        raise exc.InvalidParameterValue("A placement group name is at most 255 characters")
    if strategy not in STRATEGIES:
        raise exc.InvalidParameterValue(
            f"Value ({strategy}) for parameter strategy is invalid. Supported here: "
            "cluster, spread (partition is not).")
    if p.get("SpreadLevel") not in (None, "host"):
        raise exc.InvalidParameterValue("SpreadLevel: only host is supported")
    tags = common.tags_from_specs(p, "placement-group")
    with ctx.cloud.store.write() as s:
        if s.scalar(select(PlacementGroup).where(PlacementGroup.account_id == ctx.account_id,
                                                 PlacementGroup.name == name)) is not None:
            raise exc.InvalidPlacementGroupDuplicate(
                f"The Placement Group '{name}' already exists.")
        group = PlacementGroup(group_id=ids.new("pg"), account_id=ctx.account_id, name=name,
                               strategy=strategy)
        s.add(group)
        s.flush()
        common.put_tags(s, ctx.account_id, group.group_id, tags)
        return {"PlacementGroup": _view(ctx, group, dict(tags))}


@action("ec2", "DescribePlacementGroups")
def describe_placement_groups(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(PlacementGroup).where(
            PlacementGroup.account_id == ctx.account_id).order_by(PlacementGroup.created_at)))
        names = p.get("GroupNames") or []
        known = {g.name for g in rows}
        for name in names:
            if name not in known:
                raise _unknown(name)
        if names:
            rows = [g for g in rows if g.name in names]
        out = common.describe(
            s, ctx.account_id, p, rows, id_param="GroupIds", id_of=lambda g: g.group_id,
            not_found=_unknown,
            filters_allowed={"group-name", "group-arn", "state", "strategy", "spread-level"},
            fields=lambda g: {"group-name": g.name, "group-arn": _arn(ctx, g),
                              "state": g.state, "strategy": g.strategy,
                              "spread-level": "host" if g.strategy == "spread" else None},
            view=lambda g, tags: _view(ctx, g, tags), result_key="PlacementGroups")
    out.pop("NextToken", None)  # DescribePlacementGroups does not page
    return out


@action("ec2", "DeletePlacementGroup")
def delete_placement_group(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("GroupName")
    if not name:
        raise exc.MissingParameter("The request must contain the parameter groupName")
    with ctx.cloud.store.write() as s:
        group = s.scalar(select(PlacementGroup).where(
            PlacementGroup.account_id == ctx.account_id, PlacementGroup.name == name))
        if group is None:
            raise _unknown(name)
        members = s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.placement_group_id == group.group_id,
            models.Instance.state.in_(HOLDING))) or 0
        if members:
            raise exc.InvalidPlacementGroupInUse(
                f"The placement group '{name}' is in use and may not be deleted.")
        s.delete(group)
        s.execute(models.Tag.__table__.delete().where(models.Tag.resource_id == group.group_id))
    return {}
