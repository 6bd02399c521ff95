"""The default VPC and default subnet of each account, read-only for now (CreateVpc and
friends come with per-VPC isolation). Enough for tools that look them up first."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import instance as instance_view
from gureum.services.ec2.views import tag_list
from gureum.store import models


def _vpc(ctx: RequestContext) -> dict[str, Any]:
    cfg = ctx.cloud.config
    vpc_id = ctx.cloud.default_vpc_id(ctx.account_id)
    return {
        "VpcId": vpc_id, "CidrBlock": cfg.vpc_cidr, "State": "available", "IsDefault": True,
        "OwnerId": ctx.account_id, "InstanceTenancy": "default",
        "DhcpOptionsId": ids.derived("dopt", ctx.account_id),
        "CidrBlockAssociationSet": [{"AssociationId": ids.derived("vpc-cidr-assoc", vpc_id),
                                     "CidrBlock": cfg.vpc_cidr,
                                     "CidrBlockState": {"State": "associated"}}],
    }


@action("ec2", "DescribeVpcs")
def describe_vpcs(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    vpc = _vpc(ctx)
    for vpc_id in p.get("VpcIds") or []:
        if vpc_id != vpc["VpcId"]:
            raise exc.InvalidVpcIDNotFound(f"The vpc ID '{vpc_id[:64]}' does not exist")
    flt = filters.validate(p.get("Filters"), {"vpc-id", "cidr", "cidr-block", "is-default",
                                              "state", "owner-id"})
    fields = {"vpc-id": vpc["VpcId"], "cidr": vpc["CidrBlock"], "cidr-block": vpc["CidrBlock"],
              "is-default": True, "state": "available", "owner-id": ctx.account_id}
    with ctx.cloud.store.read() as s:
        tags = common.tags_of(s, ctx.account_id, [vpc["VpcId"]])[vpc["VpcId"]]
    vpc["Tags"] = tag_list(tags) or None
    return {"Vpcs": [vpc] if filters.match(flt, fields, tags) else []}


@action("ec2", "DescribeSubnets")
def describe_subnets(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    cfg = ctx.cloud.config
    subnet_id = ctx.cloud.default_subnet_id(ctx.account_id)
    for wanted in p.get("SubnetIds") or []:
        if wanted != subnet_id:
            raise exc.InvalidSubnetIDNotFound(f"The subnet ID '{wanted[:64]}' does not exist")
    with ctx.cloud.store.read() as s:
        used = s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.subnet_id == subnet_id, models.Instance.state != "terminated")) or 0
        tags = common.tags_of(s, ctx.account_id, [subnet_id])[subnet_id]
        settings = s.get(models.SubnetSettings, subnet_id)
    map_public = settings.map_public_ip_on_launch if settings else True
    net = ipaddress.ip_network(cfg.subnet_cidr)
    subnet = {
        "SubnetId": subnet_id, "VpcId": ctx.cloud.default_vpc_id(ctx.account_id),
        "CidrBlock": cfg.subnet_cidr, "AvailabilityZone": ctx.cloud.availability_zone,
        "AvailabilityZoneId": f"{cfg.region}-az1", "State": "available",
        "AvailableIpAddressCount": max(0, net.num_addresses - 5 - used),
        "DefaultForAz": True, "MapPublicIpOnLaunch": map_public, "OwnerId": ctx.account_id,
        "SubnetArn": f"arn:aws:ec2:{cfg.region}:{ctx.account_id}:subnet/{subnet_id}",
        "Tags": tag_list(tags) or None,
    }
    flt = filters.validate(p.get("Filters"), {"subnet-id", "vpc-id", "availability-zone",
                                              "default-for-az", "cidr-block", "state",
                                              "owner-id", "map-public-ip-on-launch"})
    fields = {"subnet-id": subnet_id, "vpc-id": subnet["VpcId"],
              "availability-zone": subnet["AvailabilityZone"], "default-for-az": True,
              "cidr-block": cfg.subnet_cidr, "state": "available", "owner-id": ctx.account_id,
              "map-public-ip-on-launch": map_public}
    return {"Subnets": [subnet] if filters.match(flt, fields, tags) else []}


@action("ec2", "DescribeNetworkInterfaces")
def describe_network_interfaces(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), {"network-interface-id", "attachment.instance-id",
                                              "private-ip-address", "subnet-id", "vpc-id",
                                              "group-id", "status", "addresses.private-ip-address"})
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.Instance).where(
            models.Instance.account_id == ctx.account_id, models.Instance.state != "terminated")
            .order_by(models.Instance.launch_time)))
        names = common.group_names(s, ctx.account_id)
    out = []
    for inst in rows:
        eni = instance_view(inst, {}, ctx.cloud.config.region, names)["NetworkInterfaces"][0]
        eni["AvailabilityZone"] = inst.availability_zone
        eni["Attachment"]["InstanceId"] = inst.instance_id
        eni["Attachment"]["InstanceOwnerId"] = inst.account_id
        eni["RequesterManaged"] = False
        wanted = p.get("NetworkInterfaceIds")
        if wanted and eni["NetworkInterfaceId"] not in wanted:
            continue
        fields = {"network-interface-id": eni["NetworkInterfaceId"],
                  "attachment.instance-id": inst.instance_id, "private-ip-address": inst.private_ip,
                  "addresses.private-ip-address": inst.private_ip, "subnet-id": inst.subnet_id,
                  "vpc-id": inst.vpc_id, "group-id": inst.security_group_ids, "status": "in-use"}
        if filters.match(flt, fields, {}):
            out.append(eni)
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"))
    return {"NetworkInterfaces": chunk, "NextToken": token}


@action("ec2", "ModifySubnetAttribute")
def modify_subnet_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    subnet_id = p["SubnetId"]
    if subnet_id != ctx.cloud.default_subnet_id(ctx.account_id):
        raise exc.InvalidSubnetIDNotFound(f"The subnet ID '{subnet_id[:64]}' does not exist")
    changes = {k for k in p if k not in ("SubnetId", "DryRun")}
    if changes - {"MapPublicIpOnLaunch"}:
        raise exc.UnsupportedOperation(
            f"Only MapPublicIpOnLaunch can be modified here, not {sorted(changes)[0]}")
    if "MapPublicIpOnLaunch" not in p:
        raise exc.MissingParameter("The request must contain an attribute to modify")
    value = bool((p["MapPublicIpOnLaunch"] or {}).get("Value", False))
    with ctx.cloud.store.write() as s:
        settings = s.get(models.SubnetSettings, subnet_id)
        if settings is None:
            s.add(models.SubnetSettings(subnet_id=subnet_id, account_id=ctx.account_id,
                                        map_public_ip_on_launch=value))
        else:
            settings.map_public_ip_on_launch = value
    return {}
