"""Regions, zones and account attributes: one region, one zone per host group."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.hosts.registry import zone_id
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters


@action("ec2", "DescribeRegions")
def describe_regions(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    cfg = ctx.cloud.config
    names = p.get("RegionNames")
    if names and any(n != cfg.region for n in names):
        bad = next(n for n in names if n != cfg.region)
        raise exc.InvalidParameterValue(f"Invalid region: {bad}")
    flt = filters.validate(p.get("Filters"), {"endpoint", "region-name", "opt-in-status"})
    region = {"RegionName": cfg.region, "Endpoint": cfg.endpoint,
              "OptInStatus": "opt-in-not-required"}
    fields = {"endpoint": cfg.endpoint, "region-name": cfg.region,
              "opt-in-status": "opt-in-not-required"}
    return {"Regions": [region] if filters.match(flt, fields, {}) else []}


@action("ec2", "DescribeAvailabilityZones")
def describe_availability_zones(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    """The zones the hosts declare (`gureum agent --join --zone`), the default one always."""
    cfg = ctx.cloud.config
    names = ctx.cloud.zones()
    ids = {zone_id(cfg.region, n): n for n in names}
    for n in p.get("ZoneNames") or []:
        if n not in names:
            raise exc.InvalidParameterValue(f"The zone '{n}' does not exist.")
    for n in p.get("ZoneIds") or []:
        if n not in ids:
            raise exc.InvalidParameterValue(f"The zone id '{n}' does not exist.")
    wanted = set(p.get("ZoneNames") or []) | {ids[i] for i in p.get("ZoneIds") or []}
    flt = filters.validate(p.get("Filters"), {
        "zone-name", "zone-id", "region-name", "state", "zone-type", "group-name",
        "opt-in-status", "network-border-group"})
    zones = []
    for zone_name in names:
        if wanted and zone_name not in wanted:
            continue
        zid = zone_id(cfg.region, zone_name)
        fields = {"zone-name": zone_name, "zone-id": zid, "region-name": cfg.region,
                  "state": "available", "zone-type": "availability-zone",
                  "group-name": cfg.region, "opt-in-status": "opt-in-not-required",
                  "network-border-group": cfg.region}
        if filters.match(flt, fields, {}):
            zones.append({"ZoneName": zone_name, "ZoneId": zid, "State": "available",
                          "RegionName": cfg.region, "ZoneType": "availability-zone",
                          "OptInStatus": "opt-in-not-required", "GroupName": cfg.region,
                          "NetworkBorderGroup": cfg.region, "Messages": []})
    return {"AvailabilityZones": zones}


@action("ec2", "DescribeAccountAttributes")
def describe_account_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    values = {
        "supported-platforms": ["VPC"],
        "default-vpc": [ctx.cloud.default_vpc_id(ctx.account_id)],
        "max-instances": [str(ctx.cloud.config.max_instances_per_account)],
        "vpc-max-security-groups-per-interface": ["5"],
        "max-elastic-ips": ["5"],
        "vpc-max-elastic-ips": ["5"],
    }
    names = p.get("AttributeNames") or list(values)
    for name in names:
        if name not in values:
            raise exc.InvalidParameterValue(f"Invalid attribute name: {name}")
    return {"AccountAttributes": [
        {"AttributeName": n, "AttributeValues": [{"AttributeValue": v} for v in values[n]]}
        for n in names]}
