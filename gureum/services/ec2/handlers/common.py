"""Helpers shared by EC2 handlers: lookups, tags, paging."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, inspect, select
from sqlalchemy.orm import Session

from gureum.api import paging
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.store import models
from gureum.store.db import bulk_delete

RESOURCE_TYPES = {"i": "instance", "ami": "image", "key": "key-pair", "vol": "volume",
                  "vpc": "vpc", "subnet": "subnet", "sg": "security-group",
                  "eni": "network-interface", "igw": "internet-gateway", "rtb": "route-table",
                  "eipalloc": "elastic-ip", "nat": "natgateway", "lt": "launch-template", "snap": "snapshot"}


def tags_of(session: Session, account_id: str, resource_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    wanted = list(resource_ids)
    out: dict[str, dict[str, str]] = defaultdict(dict)
    if not wanted:
        return out
    rows = session.scalars(select(models.Tag).where(models.Tag.account_id == account_id,
                                                    models.Tag.resource_id.in_(wanted)))
    for tag in rows:
        out[tag.resource_id][tag.key] = tag.value
    return out


def all_tags(session: Session, account_id: str, resource_type: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = defaultdict(dict)
    # Columns, not ORM objects: a thousand instances' tags load several times faster.
    rows = session.execute(select(models.Tag.resource_id, models.Tag.key, models.Tag.value).where(
        models.Tag.account_id == account_id, models.Tag.resource_type == resource_type))
    for resource_id, key, value in rows:
        out[resource_id][key] = value
    return out


def validate_tags(tags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value", "")
        if key is None:
            raise exc.InvalidParameterValue("Tag key must be given")
        if not 1 <= len(key) <= 128:
            raise exc.InvalidParameterValue(
                f"Tag key exceeds the maximum length of 128 characters: {key[:140]}")
        if len(value) > 256:
            raise exc.InvalidParameterValue(
                "Tag value exceeds the maximum length of 256 characters")
        if key.lower().startswith("aws:"):
            raise exc.InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
        out.append((key, value))
    if len(out) > 50:
        raise exc.TagLimitExceeded("The maximum number of Tags for a resource has been reached.")
    return out


def tags_from_specs(p: dict[str, Any], resource_type: str) -> list[tuple[str, str]]:
    """The validated tags of TagSpecifications that may only name `resource_type`."""
    tags: list[dict[str, Any]] = []
    for spec in p.get("TagSpecifications") or []:
        if spec.get("ResourceType") != resource_type:
            raise exc.InvalidParameterValue(
                f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this operation.")
        tags.extend(spec.get("Tags") or [])
    return validate_tags(tags)


def put_tags(session: Session, account_id: str, resource_id: str, tags: list[tuple[str, str]]) -> None:
    rtype = RESOURCE_TYPES.get(resource_id.split("-")[0], "unknown")
    for key, value in tags:
        existing = session.get(models.Tag, (resource_id, key))
        if existing is not None:
            existing.value = value
        else:
            session.add(models.Tag(resource_id=resource_id, key=key, value=value,
                                   account_id=account_id, resource_type=rtype))


def delete_tags(session: Session, resource_ids: Iterable[str]) -> None:
    """The tags of resources that are going away."""
    ids = list(resource_ids)
    bulk_delete(session, delete(models.Tag).where(models.Tag.resource_id.in_(ids)), ids)


def delete_with_tags(session: Session, *rows: Any) -> None:
    """Delete resources and their tags: the one way a tagged resource leaves the store."""
    delete_tags(session, [inspect(row).identity[0] for row in rows])
    for row in rows:
        session.delete(row)


def instances_by_id(session: Session, account_id: str, instance_ids: list[str]) -> list[models.Instance]:
    """The account's instances, in the order asked; NotFound names every missing id."""
    ids.check_instance_ids(instance_ids)
    rows = {i.instance_id: i for i in session.scalars(
        select(models.Instance).where(models.Instance.account_id == account_id,
                                      models.Instance.instance_id.in_(instance_ids)))}
    missing = [i for i in instance_ids if i not in rows]
    if missing:
        quoted = ", ".join(f"'{i}'" for i in missing)
        word = "IDs" if len(missing) > 1 else "ID"
        raise exc.InvalidInstanceIDNotFound(f"The instance {word} {quoted} do{'' if len(missing) > 1 else 'es'} not exist")
    return [rows[i] for i in dict.fromkeys(instance_ids)]


page = paging.pager(
    lambda token: exc.InvalidPaginationToken(f"Invalid pagination token: {token}"),
    lambda n, lo, hi: exc.InvalidParameterValue(
        f"Value ( {n} ) for parameter maxResults is invalid. Parameter must be between {lo} "
        f"and {hi}."), lo=5, hi=1000)


def vpcs_without_hostnames(session: Session, account_id: str) -> set[str]:
    return set(session.scalars(select(models.Vpc.vpc_id).where(
        models.Vpc.account_id == account_id, models.Vpc.enable_dns_hostnames.is_(False))))


def group_names(session: Session, account_id: str) -> dict[str, str]:
    """Names of the account's security groups and placement groups, by id."""
    from gureum.store.host_models import PlacementGroup

    names = {g.group_id: g.name for g in session.scalars(select(models.SecurityGroup).where(
        models.SecurityGroup.account_id == account_id))}
    names.update(session.execute(select(PlacementGroup.group_id, PlacementGroup.name).where(
        PlacementGroup.account_id == account_id)).all())
    return names


def describe(session: Session, account_id: str, p: dict[str, Any], rows: list[Any], *,
             id_param: str, id_of: Callable[[Any], str], not_found: Callable[[str], Exception],
             filters_allowed: set[str], fields: Callable[[Any], dict[str, Any]],
             view: Callable[[Any, dict[str, str]], dict[str, Any]],
             result_key: str) -> dict[str, Any]:
    """A Describe* call over one account's resources: ids (each must exist), filters
    (with tags) and pagination, the same way for every resource type."""
    by_id = {id_of(r): r for r in rows}
    wanted = p.get(id_param) or []
    for resource_id in wanted:
        if resource_id not in by_id:
            raise not_found(resource_id)
    chosen = [by_id[i] for i in dict.fromkeys(wanted)] if wanted else rows
    flt = filters.validate(p.get("Filters"), filters_allowed)
    tags = tags_of(session, account_id, [id_of(r) for r in chosen])
    out = [view(r, tags[id_of(r)]) for r in chosen if filters.match(flt, fields(r), tags[id_of(r)])]
    chunk, token = page(out, p.get("MaxResults"), p.get("NextToken"))
    return {result_key: chunk, "NextToken": token}


def owned(session: Session, account_id: str, model: type[Any], resource_id: str,
          not_found: Callable[[str], Exception]) -> Any:
    """The account's row of `model` with this id, or the resource's NotFound error."""
    row = session.get(model, resource_id)
    if row is None or row.account_id != account_id:
        raise not_found(resource_id)
    return row
