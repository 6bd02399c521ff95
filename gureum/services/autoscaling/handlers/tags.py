"""Auto Scaling group tags: CreateOrUpdateTags, DeleteTags, DescribeTags. A tag with
PropagateAtLaunch is put on every instance the group launches from then on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import resources as res
from gureum.services.autoscaling.handlers.groups import put_tags
from gureum.store.autoscaling_models import AutoScalingGroup, GroupTag


def _by_group(p: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for tag in p["Tags"]:
        if tag.get("ResourceType", "auto-scaling-group") != "auto-scaling-group" or \
                not tag.get("ResourceId"):
            raise exc.ValidationError("Tags need ResourceType auto-scaling-group and the "
                                      "group's name as ResourceId")
        out.setdefault(tag["ResourceId"], []).append(tag)
    return out


@action("autoscaling", "CreateOrUpdateTags")
def create_or_update_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        for name, tags in _by_group(p).items():
            put_tags(s, res.group(s, ctx.account_id, name), tags)
    return {}


@action("autoscaling", "DeleteTags")
def delete_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        for name, tags in _by_group(p).items():
            g = res.group(s, ctx.account_id, name)
            for tag in tags:
                row = s.get(GroupTag, (g.arn, tag.get("Key") or ""))
                if row is not None:
                    s.delete(row)
    return {}


FILTERS = ("auto-scaling-group", "key", "value", "propagate-at-launch")


@action("autoscaling", "DescribeTags")
def describe_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    wanted: dict[str, set[str]] = {}
    for f in p.get("Filters") or []:
        if f.get("Name") not in FILTERS:
            raise exc.ValidationError(f"Filter name {str(f.get('Name'))[:64]} is not valid; "
                                      f"valid: {', '.join(FILTERS)}")
        wanted.setdefault(f["Name"], set()).update(f.get("Values") or [])
    with ctx.cloud.store.read() as s:
        views = [v for g in s.scalars(select(AutoScalingGroup).where(
            AutoScalingGroup.account_id == ctx.account_id).order_by(AutoScalingGroup.name))
            for v in res.tag_views(s, g)]
    fields = {"auto-scaling-group": "ResourceId", "key": "Key", "value": "Value",
              "propagate-at-launch": "PropagateAtLaunch"}
    views = [v for v in views if all(str(v[fields[name]]).lower() in {x.lower() for x in values}
                                     if name == "propagate-at-launch" else v[fields[name]] in values
                                     for name, values in wanted.items())]
    chunk, token = res.page(views, p.get("MaxRecords"), p.get("NextToken"))
    out: dict[str, Any] = {"Tags": chunk}
    if token:
        out["NextToken"] = token
    return out
