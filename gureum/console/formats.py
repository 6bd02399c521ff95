"""Template filters: how times, sizes and tags read on the page."""

from __future__ import annotations

import datetime as dt
from typing import Any


def when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value or "")


def tag(tags: list[dict[str, str]] | None, key: str) -> str:
    return next((t["Value"] for t in tags or [] if t["Key"] == key), "")


def pair(value: str) -> tuple[str, str]:
    """A select option whose value and text are the same."""
    return value, value


def subnet_choices(subnets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Subnets as options: what tells them apart when picking (range, VPC, zone)."""
    return [(s["SubnetId"], f"{s['SubnetId']} · {s['CidrBlock']} · {s['VpcId']} · "
             f"{s['AvailabilityZone']}" + (" · public IP" if s.get("MapPublicIpOnLaunch") else ""))
            for s in subnets]


def group_choices(groups: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(g["GroupId"], f"{g['GroupName']} · {g['GroupId']} · {g.get('VpcId', '')}")
            for g in groups]


def instance_choices(instances: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["InstanceId"], " · ".join(x for x in (
        i["InstanceId"], tag(i.get("Tags"), "Name"), i["State"]["Name"], i.get("VpcId", ""))
        if x)) for i in instances]


FILTERS = {"when": when, "tag": tag, "pair": pair, "subnet_choices": subnet_choices,
           "group_choices": group_choices, "instance_choices": instance_choices}
