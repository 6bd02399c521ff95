"""Managed prefix lists: Create/Describe/Modify/Delete, entries by version, associations
(the security groups using a list) and RestoreManagedPrefixListVersion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2 import prefix_lists as pl
from gureum.services.ec2.handlers import common
from gureum.store.vpc_options_models import ManagedPrefixList, PrefixListVersion


def _state(prefix_list: ManagedPrefixList) -> str:
    # Changes apply within the request: the list is never "in progress" when described.
    return "create-complete" if prefix_list.version == 1 else "modify-complete"


def _view(ctx: RequestContext, s: Any, prefix_list: ManagedPrefixList,  # noqa: ANN401
          state: str | None = None) -> dict[str, Any]:
    tags = common.tags_of(s, ctx.account_id, [prefix_list.prefix_list_id])
    return pl.view(prefix_list, tags[prefix_list.prefix_list_id], ctx.cloud.config.region,
                   state or _state(prefix_list))


def _new_version(s: Any, prefix_list: ManagedPrefixList,  # noqa: ANN401
                 entries: list[dict[str, str]]) -> None:
    if len(entries) > prefix_list.max_entries:
        raise exc.PrefixListMaxEntriesExceeded(
            f"The prefix list {prefix_list.prefix_list_id} would have {len(entries)} entries; "
            f"its maximum is {prefix_list.max_entries}.")
    prefix_list.version += 1
    s.add(PrefixListVersion(prefix_list_id=prefix_list.prefix_list_id,
                            version=prefix_list.version, entries=entries))


@action("ec2", "CreateManagedPrefixList")
def create_managed_prefix_list(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("PrefixListName") or ""
    if not name or len(name) > 255 or name.lower().startswith("com.amazonaws"):
        raise exc.InvalidParameterValue(
            f"The prefix list name '{name[:64]}' is invalid: 1-255 characters, "
            "not starting with com.amazonaws")
    if p.get("AddressFamily") not in ("IPv4", "IPv6"):
        raise exc.InvalidParameterValue("AddressFamily must be IPv4 or IPv6")
    if p["AddressFamily"] == "IPv6":
        raise exc.UnsupportedOperation("IPv6 prefix lists are not supported (no IPv6 here)")
    max_entries = pl.check_max_entries(p.get("MaxEntries"))
    entries = pl.parse_entries(p.get("Entries") or [])
    tags = common.tags_from_specs(p, "prefix-list")
    with ctx.cloud.store.write() as s:
        prefix_list = ManagedPrefixList(prefix_list_id=ids.new("pl"), account_id=ctx.account_id,
                                        name=name, address_family="IPv4",
                                        max_entries=max_entries, version=0)
        s.add(prefix_list)
        s.flush()
        _new_version(s, prefix_list, entries)
        common.put_tags(s, ctx.account_id, prefix_list.prefix_list_id, tags)
        s.flush()
        return {"PrefixList": _view(ctx, s, prefix_list, "create-in-progress")}


@action("ec2", "DescribeManagedPrefixLists")
def describe_managed_prefix_lists(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    for wanted in p.get("PrefixListIds") or []:
        ids.require(wanted, "pl", exc.InvalidPrefixListIdMalformed)
    region = ctx.cloud.config.region
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(ManagedPrefixList).where(
            ManagedPrefixList.account_id == ctx.account_id)
            .order_by(ManagedPrefixList.created_at)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="PrefixListIds",
            id_of=lambda r: r.prefix_list_id, not_found=pl.not_found,
            filters_allowed={"owner-id", "prefix-list-id", "prefix-list-name"},
            fields=lambda r: {"owner-id": r.account_id, "prefix-list-id": r.prefix_list_id,
                              "prefix-list-name": r.name},
            view=lambda r, tags: pl.view(r, tags, region, _state(r)), result_key="PrefixLists")


@action("ec2", "ModifyManagedPrefixList")
def modify_managed_prefix_list(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    adding = pl.parse_entries(p.get("AddEntries") or [])
    removing = pl.parse_entries(p.get("RemoveEntries") or [])
    if (adding or removing) and p.get("MaxEntries") is not None:
        raise exc.InvalidParameterCombination(
            "You cannot modify the entries of a prefix list and its size at the same time.")
    with ctx.cloud.store.write() as s:
        prefix_list = pl.own(s, ctx.account_id, p.get("PrefixListId"))
        current = p.get("CurrentVersion")
        if current is not None and int(current) != prefix_list.version:
            raise exc.PrefixListVersionMismatch("The prefix list has the incorrect version number.")
        if p.get("PrefixListName"):
            prefix_list.name = p["PrefixListName"][:255]
        if p.get("MaxEntries") is not None:
            wanted = pl.check_max_entries(p["MaxEntries"])
            if wanted < len(pl.entries(s, prefix_list)):
                raise exc.InvalidParameterValue(
                    f"MaxEntries {wanted} is below the list's {len(pl.entries(s, prefix_list))} "
                    "entries")
            prefix_list.max_entries = wanted
        if adding or removing:
            if current is None:
                raise exc.MissingParameter(
                    "The request must contain the parameter CurrentVersion")
            entries = {e["Cidr"]: e for e in pl.entries(s, prefix_list)}
            for entry in removing:
                if entries.pop(entry["Cidr"], None) is None:
                    raise exc.InvalidPrefixListModification(
                        f"The prefix list entry {entry['Cidr']} does not exist.")
            for entry in adding:
                if entry["Cidr"] in entries:
                    raise exc.InvalidPrefixListModification(
                        f"The prefix list entry {entry['Cidr']} already exists.")
                entries[entry["Cidr"]] = entry
            _new_version(s, prefix_list, list(entries.values()))
        s.flush()
        return {"PrefixList": _view(ctx, s, prefix_list, "modify-in-progress")}


@action("ec2", "RestoreManagedPrefixListVersion")
def restore_managed_prefix_list_version(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        prefix_list = pl.own(s, ctx.account_id, p.get("PrefixListId"))
        if int(p["CurrentVersion"]) != prefix_list.version:
            raise exc.PrefixListVersionMismatch("The prefix list has the incorrect version number.")
        previous = int(p["PreviousVersion"])
        if not 1 <= previous < prefix_list.version:
            raise exc.InvalidParameterValue(f"The prefix list has no version {previous}.")
        _new_version(s, prefix_list, pl.entries(s, prefix_list, previous))
        s.flush()
        return {"PrefixList": _view(ctx, s, prefix_list, "restore-in-progress")}


@action("ec2", "DeleteManagedPrefixList")
def delete_managed_prefix_list(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        prefix_list = pl.own(s, ctx.account_id, p.get("PrefixListId"))
        users = pl.referencing_groups(s, prefix_list.prefix_list_id)
        if users:
            raise exc.DependencyViolation(
                f"The prefix list {prefix_list.prefix_list_id} is referenced by "
                f"{', '.join(g.group_id for g in users[:10])}.")
        out = _view(ctx, s, prefix_list, "delete-in-progress")
        s.execute(delete(PrefixListVersion).where(
            PrefixListVersion.prefix_list_id == prefix_list.prefix_list_id))
        common.delete_with_tags(s, prefix_list)
    return {"PrefixList": out}


@action("ec2", "GetManagedPrefixListEntries")
def get_managed_prefix_list_entries(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        prefix_list = pl.own(s, ctx.account_id, p.get("PrefixListId"))
        version = p.get("TargetVersion")
        if version is not None and not 1 <= int(version) <= prefix_list.version:
            raise exc.InvalidParameterValue(f"The prefix list has no version {version}.")
        found = sorted(pl.entries(s, prefix_list, version), key=lambda e: e["Cidr"])
    chunk, token = common.page(found, p.get("MaxResults"), p.get("NextToken"))
    return {"Entries": chunk, "NextToken": token}


@action("ec2", "GetManagedPrefixListAssociations")
def get_managed_prefix_list_associations(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        prefix_list = pl.own(s, ctx.account_id, p.get("PrefixListId"))
        users = [{"ResourceId": g.group_id, "ResourceOwner": g.account_id}
                 for g in pl.referencing_groups(s, prefix_list.prefix_list_id)]
    chunk, token = common.page(users, p.get("MaxResults"), p.get("NextToken"))
    return {"PrefixListAssociations": chunk, "NextToken": token}
