"""Managed prefix lists: named, versioned sets of CIDRs that security-group rules refer
to. A rule naming a list allows the list's current entries, so a modification changes
every firewall that uses it on the firewall controller's next pass (woken by the commit)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.store import models
from gureum.store.vpc_options_models import ManagedPrefixList, PrefixListVersion

MAX_ENTRIES = 1000  # AWS's limit on MaxEntries
MAX_CHANGES = 100  # entries one request may add or remove


def not_found(prefix_list_id: str) -> Exception:
    return exc.InvalidPrefixListIDNotFound(
        f"The prefix list ID '{prefix_list_id[:64]}' does not exist")


def own(session: Session, account_id: str, prefix_list_id: str | None) -> ManagedPrefixList:
    if not prefix_list_id:
        raise exc.MissingParameter("The request must contain the parameter PrefixListId")
    ids.require(prefix_list_id, "pl", exc.InvalidPrefixListIdMalformed)
    row = session.get(ManagedPrefixList, prefix_list_id)
    if row is None or row.account_id != account_id:
        raise not_found(prefix_list_id)
    return row


def check_max_entries(value: Any) -> int:  # noqa: ANN401
    if value is None:
        raise exc.MissingParameter("The request must contain the parameter MaxEntries")
    if not 1 <= int(value) <= MAX_ENTRIES:
        raise exc.InvalidParameterValue(
            f"MaxEntries must be between 1 and {MAX_ENTRIES}, not {value}")
    return int(value)


def parse_entries(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """AddPrefixListEntry items, each an IPv4 CIDR (normalised) with an optional
    description; one CIDR once."""
    if len(items) > MAX_CHANGES:
        raise exc.InvalidParameterValue(
            f"The request cannot contain more than {MAX_CHANGES} entry additions or removals")
    out: dict[str, dict[str, str]] = {}
    for item in items:
        raw = str(item.get("Cidr") or "")
        try:
            cidr = str(ipaddress.IPv4Network(raw, strict=False))
        except ValueError:
            raise exc.InvalidParameterValue(f"The CIDR '{raw[:64]}' is invalid.") from None
        description = str(item.get("Description") or "")
        if len(description) > 255:
            raise exc.InvalidParameterValue("An entry's description exceeds 255 characters")
        if cidr in out:
            raise exc.InvalidPrefixListModification(
                f"The CIDR {cidr} is given more than once")
        out[cidr] = {"Cidr": cidr, **({"Description": description} if description else {})}
    return list(out.values())


def entries(session: Session, prefix_list: ManagedPrefixList,
            version: int | None = None) -> list[dict[str, str]]:
    row = session.get(PrefixListVersion, (prefix_list.prefix_list_id,
                                          version or prefix_list.version))
    return list(row.entries) if row is not None else []


def current_cidrs(session: Session) -> dict[str, tuple[str, ...]]:
    """Every list's current CIDRs, by id (what rules naming it allow)."""
    rows = session.execute(select(ManagedPrefixList.prefix_list_id, PrefixListVersion.entries)
                           .join(PrefixListVersion, (PrefixListVersion.prefix_list_id
                                                     == ManagedPrefixList.prefix_list_id)
                                 & (PrefixListVersion.version == ManagedPrefixList.version)))
    return {pl_id: tuple(e["Cidr"] for e in found) for pl_id, found in rows}


def referencing_groups(session: Session, prefix_list_id: str) -> list[models.SecurityGroup]:
    group_ids = set(session.scalars(select(models.SecurityGroupRule.group_id).where(
        models.SecurityGroupRule.prefix_list_id == prefix_list_id)))
    return [g for g in session.scalars(select(models.SecurityGroup).where(
        models.SecurityGroup.group_id.in_(group_ids)).order_by(models.SecurityGroup.group_id))]


def view(prefix_list: ManagedPrefixList, tags: dict[str, str], region: str,
         state: str = "create-complete") -> dict[str, Any]:
    return {"PrefixListId": prefix_list.prefix_list_id, "AddressFamily": prefix_list.address_family,
            "State": state, "PrefixListName": prefix_list.name,
            "PrefixListArn": f"arn:aws:ec2:{region}:{prefix_list.account_id}:prefix-list/"
                             f"{prefix_list.prefix_list_id}",
            "MaxEntries": prefix_list.max_entries, "Version": prefix_list.version,
            "OwnerId": prefix_list.account_id,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())] or None}
