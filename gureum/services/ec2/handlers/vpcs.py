"""VPCs and subnets. A VPC's host side (its router netns and bridge) is built by the
controllers when its first instance launches and removed after DeleteVpc."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, func, select

from gureum.api.dispatch import RequestContext, action
from gureum.hosts.registry import zone_id
from gureum.services.ec2 import dhcp_options as dhcp
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids, ipv6, networks, peering
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import tag_list
from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer
from gureum.store.nat_models import VpcCidrBlock


def _vpc_view(vpc: models.Vpc, tags: dict[str, str],
              secondary: list[tuple[str, str]] | None = None, region: str = "",
              ipv6_state: str = "associated") -> dict[str, Any]:
    """`secondary`: its secondary blocks, (association id, CIDR)."""
    ipv6_blocks = [ipv6.block_view(vpc.ipv6_association_id, vpc.ipv6_cidr, ipv6_state, region)
                   ] if vpc.ipv6_cidr and vpc.ipv6_association_id else []
    return {
        "VpcId": vpc.vpc_id, "CidrBlock": vpc.cidr, "State": "available",
        "IsDefault": vpc.is_default, "OwnerId": vpc.account_id, "InstanceTenancy": "default",
        "DhcpOptionsId": dhcp.effective_id(vpc),
        "CidrBlockAssociationSet": [{"AssociationId": ids.derived("vpc-cidr-assoc", vpc.vpc_id),
                                     "CidrBlock": vpc.cidr,
                                     "CidrBlockState": {"State": "associated"}}] + [
            {"AssociationId": association, "CidrBlock": cidr,
             "CidrBlockState": {"State": "associated"}} for association, cidr in secondary or []],
        "Ipv6CidrBlockAssociationSet": ipv6_blocks or None,
        "Tags": tag_list(tags) or None,
    }


def vpc_not_found(vpc_id: str) -> Exception:
    return exc.InvalidVpcIDNotFound(f"The vpc ID '{vpc_id[:64]}' does not exist")


def subnet_not_found(subnet_id: str) -> Exception:
    return exc.InvalidSubnetIDNotFound(f"The subnet ID '{subnet_id[:64]}' does not exist")


def own_vpc(ctx: RequestContext, s: Any, vpc_id: str | None) -> models.Vpc:
    if not vpc_id:
        raise exc.MissingParameter("The request must contain the parameter VpcId")
    return common.owned(s, ctx.account_id, models.Vpc, vpc_id, vpc_not_found)


@action("ec2", "CreateVpc")
def create_vpc(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv4IpamPoolId") or p.get("Ipv6CidrBlock") or p.get("Ipv6Pool") \
            or p.get("Ipv6IpamPoolId"):
        raise exc.UnsupportedOperation(
            "Only IPv4 CIDR blocks given as CidrBlock and AmazonProvidedIpv6CidrBlock are "
            "supported")
    if not p.get("CidrBlock"):
        raise exc.MissingParameter("The request must contain the parameter CidrBlock")
    cidr = str(networks.check_vpc_cidr(p["CidrBlock"]))
    if p.get("InstanceTenancy", "default") != "default":
        raise exc.UnsupportedOperation("Only the default instance tenancy is supported")
    tags = common.tags_from_specs(p, "vpc")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = networks.create_vpc(s, ctx.account_id, cidr)
        if p.get("AmazonProvidedIpv6CidrBlock"):
            vpc.ipv6_cidr = ipv6.allocate_vpc_block(s, ctx.cloud.config.ipv6_pool, vpc.vpc_id)
            vpc.ipv6_association_id = ipv6.new_vpc_association()
            sg.allow_ipv6_egress(s, ctx.account_id, networks.default_group_id(
                ctx.account_id, vpc.vpc_id, vpc.is_default))
        common.put_tags(s, ctx.account_id, vpc.vpc_id, tags)
        # AWS answers the new block "associating"; it is associated when described.
        return {"Vpc": _vpc_view(vpc, dict(tags), region=ctx.cloud.config.region,
                                 ipv6_state="associating")}


@action("ec2", "DescribeVpcs")
def describe_vpcs(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    region = ctx.cloud.config.region
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.Vpc).where(models.Vpc.account_id == ctx.account_id)
                              .order_by(models.Vpc.created_at)))
        secondary: dict[str, list[tuple[str, str]]] = {}
        for block in s.scalars(select(VpcCidrBlock).where(VpcCidrBlock.vpc_id.in_(
                [v.vpc_id for v in rows])).order_by(VpcCidrBlock.created_at)):
            secondary.setdefault(block.vpc_id, []).append((block.association_id, block.cidr))

        def fields(v: models.Vpc) -> dict[str, Any]:
            blocks = [(ids.derived("vpc-cidr-assoc", v.vpc_id), v.cidr),
                      *secondary.get(v.vpc_id, [])]
            return {"vpc-id": v.vpc_id, "cidr": v.cidr, "cidr-block": v.cidr,
                    "cidr-block-association.cidr-block": [c for _, c in blocks],
                    "cidr-block-association.association-id": [a for a, _ in blocks],
                    "cidr-block-association.state": "associated",
                    "is-default": v.is_default, "state": "available",
                    "owner-id": v.account_id, "dhcp-options-id": dhcp.effective_id(v),
                    "ipv6-cidr-block-association.ipv6-cidr-block": v.ipv6_cidr,
                    "ipv6-cidr-block-association.association-id": v.ipv6_association_id,
                    "ipv6-cidr-block-association.state": "associated" if v.ipv6_cidr else None,
                    "ipv6-cidr-block-association.ipv6-pool": "Amazon" if v.ipv6_cidr else None}

        return common.describe(
            s, ctx.account_id, p, rows, id_param="VpcIds", id_of=lambda v: v.vpc_id,
            not_found=vpc_not_found,
            filters_allowed={"vpc-id", "cidr", "cidr-block", "cidr-block-association.cidr-block",
                             "cidr-block-association.association-id",
                             "cidr-block-association.state",
                             "is-default", "state", "owner-id", "dhcp-options-id",
                             "ipv6-cidr-block-association.ipv6-cidr-block",
                             "ipv6-cidr-block-association.association-id",
                             "ipv6-cidr-block-association.state",
                             "ipv6-cidr-block-association.ipv6-pool"},
            fields=fields,
            view=lambda v, tags: _vpc_view(v, tags, secondary.get(v.vpc_id), region=region),
            result_key="Vpcs")


@action("ec2", "DeleteVpc")
def delete_vpc(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        if vpc.is_default:
            # The default VPC is remade on first use; deleting it would only surprise.
            raise exc.OperationNotPermitted("gureum keeps each account's default VPC")
        depends = [
            s.scalar(select(func.count()).select_from(models.Subnet).where(
                models.Subnet.vpc_id == vpc.vpc_id)),
            s.scalar(select(func.count()).select_from(models.InternetGateway).where(
                models.InternetGateway.vpc_id == vpc.vpc_id)),
            s.scalar(select(func.count()).select_from(models.RouteTable).where(
                models.RouteTable.vpc_id == vpc.vpc_id, models.RouteTable.is_main.is_(False))),
            s.scalar(select(func.count()).select_from(models.SecurityGroup).where(
                models.SecurityGroup.vpc_id == vpc.vpc_id, models.SecurityGroup.name != "default")),
            peering.active_of_vpc(s, vpc.vpc_id),
            s.scalar(select(func.count()).select_from(models.EgressOnlyInternetGateway).where(
                models.EgressOnlyInternetGateway.vpc_id == vpc.vpc_id)),
        ]
        if any(depends):
            raise exc.DependencyViolation(
                f"The vpc '{vpc.vpc_id}' has dependencies and cannot be deleted.")
        tables = [t.route_table_id for t in s.scalars(select(models.RouteTable).where(
            models.RouteTable.vpc_id == vpc.vpc_id))]
        groups = [g.group_id for g in s.scalars(select(models.SecurityGroup).where(
            models.SecurityGroup.vpc_id == vpc.vpc_id))]
        s.execute(delete(models.Route).where(models.Route.route_table_id.in_(tables)))
        s.execute(delete(models.RouteTable).where(models.RouteTable.vpc_id == vpc.vpc_id))
        s.execute(delete(models.SecurityGroupRule).where(
            models.SecurityGroupRule.group_id.in_(groups)))
        s.execute(delete(models.SecurityGroup).where(models.SecurityGroup.group_id.in_(groups)))
        common.delete_tags(s, [*tables, *groups])
        s.execute(delete(VpcCidrBlock).where(VpcCidrBlock.vpc_id == vpc.vpc_id))
        common.delete_with_tags(s, vpc)
    return {"Return": True}


_VPC_ATTRIBUTES = {"enableDnsSupport": ("EnableDnsSupport", "enable_dns_support"),
                   "enableDnsHostnames": ("EnableDnsHostnames", "enable_dns_hostnames")}


@action("ec2", "DescribeVpcAttribute")
def describe_vpc_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.read() as s:
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        attribute = p["Attribute"]
        if attribute == "enableNetworkAddressUsageMetrics":
            return {"VpcId": vpc.vpc_id, "EnableNetworkAddressUsageMetrics": {"Value": False}}
        key, column = _VPC_ATTRIBUTES[attribute]
        return {"VpcId": vpc.vpc_id, key: {"Value": getattr(vpc, column)}}


@action("ec2", "ModifyVpcAttribute")
def modify_vpc_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    given = [name for name in ("EnableDnsSupport", "EnableDnsHostnames",
                               "EnableNetworkAddressUsageMetrics") if p.get(name) is not None]
    if len(given) != 1:
        raise exc.InvalidParameterCombination(
            "Exactly one attribute may be modified per request" if given else
            "The request must contain one attribute to modify")
    if given[0] == "EnableNetworkAddressUsageMetrics":
        raise exc.UnsupportedOperation("Network address usage metrics are not available here")
    value = bool((p[given[0]] or {}).get("Value", False))
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        if given[0] == "EnableDnsHostnames" and value and not vpc.enable_dns_support:
            raise exc.InvalidParameterValue(
                "enableDnsHostnames can only be enabled when enableDnsSupport is enabled")
        setattr(vpc, _VPC_ATTRIBUTES[given[0][0].lower() + given[0][1:]][1], value)
    return {}


def _subnet_view(s: Any, subnet: models.Subnet, tags: dict[str, str], region: str,
                 ipv6_state: str = "associated") -> dict[str, Any]:
    used = s.scalar(select(func.count()).select_from(models.Instance).where(
        models.Instance.subnet_id == subnet.subnet_id, models.Instance.state != "terminated")) or 0
    net = ipaddress.ip_network(subnet.cidr)
    return {
        "SubnetId": subnet.subnet_id, "VpcId": subnet.vpc_id, "CidrBlock": subnet.cidr,
        "AvailabilityZone": subnet.availability_zone,
        "AvailabilityZoneId": zone_id(region, subnet.availability_zone), "State": "available",
        "AvailableIpAddressCount": max(0, net.num_addresses - 5 - used),
        "DefaultForAz": subnet.default_for_az,
        "MapPublicIpOnLaunch": subnet.map_public_ip_on_launch, "OwnerId": subnet.account_id,
        # AWS names the IPv6 settings even for IPv4-only subnets, and tools compare them
        # (Ansible's ec2_vpc_subnet modifies an attribute it finds missing).
        "AssignIpv6AddressOnCreation": subnet.assign_ipv6_on_creation,
        "Ipv6CidrBlockAssociationSet": [ipv6.block_view(
            subnet.ipv6_association_id, subnet.ipv6_cidr, ipv6_state)]
        if subnet.ipv6_cidr and subnet.ipv6_association_id else [],
        "EnableDns64": False, "Ipv6Native": False, "MapCustomerOwnedIpOnLaunch": False,
        "SubnetArn": f"arn:aws:ec2:{region}:{subnet.account_id}:subnet/{subnet.subnet_id}",
        "Tags": tag_list(tags) or None,
    }


def own_subnet(ctx: RequestContext, s: Any, subnet_id: str) -> models.Subnet:
    return common.owned(s, ctx.account_id, models.Subnet, subnet_id, subnet_not_found)


@action("ec2", "CreateSubnet")
def create_subnet(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("Ipv6Native") or p.get("Ipv4IpamPoolId") or p.get("Ipv6IpamPoolId"):
        raise exc.UnsupportedOperation(
            "Only subnets given as CidrBlock (and Ipv6CidrBlock) are supported")
    if not p.get("CidrBlock"):
        raise exc.MissingParameter("The request must contain the parameter CidrBlock")
    # A subnet lives in one zone, as on AWS: one the hosts declare.
    region, zones = ctx.cloud.config.region, ctx.cloud.zones()
    by_id = {zone_id(region, z): z for z in zones}
    zone = p.get("AvailabilityZone") or by_id.get(p.get("AvailabilityZoneId") or "") or (
        ctx.cloud.availability_zone if not p.get("AvailabilityZoneId") else None)
    if zone not in zones or p.get("AvailabilityZoneId") not in (None, zone_id(region, zone)):
        raise exc.InvalidParameterValue(
            f"Value ({zone or p.get('AvailabilityZoneId')}) for parameter availabilityZone "
            "is invalid.")
    tags = common.tags_from_specs(p, "subnet")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p.get("VpcId"))
        cidr = str(networks.check_subnet_cidr(s, vpc, p["CidrBlock"]))
        block = ipv6.check_subnet_block(s, vpc, p["Ipv6CidrBlock"]) \
            if p.get("Ipv6CidrBlock") else None
        subnet = models.Subnet(subnet_id=ids.new("subnet"), account_id=ctx.account_id,
                               vpc_id=vpc.vpc_id, cidr=cidr, availability_zone=zone,
                               ipv6_cidr=block,
                               ipv6_association_id=ids.new("subnet-cidr-assoc") if block
                               else None)
        s.add(subnet)
        s.flush()
        common.put_tags(s, ctx.account_id, subnet.subnet_id, tags)
        return {"Subnet": _subnet_view(s, subnet, dict(tags), ctx.cloud.config.region,
                                       ipv6_state="associating")}


@action("ec2", "DescribeSubnets")
def describe_subnets(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    region = ctx.cloud.config.region
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.Subnet).where(
            models.Subnet.account_id == ctx.account_id).order_by(models.Subnet.created_at)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="SubnetIds", id_of=lambda n: n.subnet_id,
            not_found=subnet_not_found,
            filters_allowed={"subnet-id", "vpc-id", "availability-zone", "default-for-az",
                             "cidr-block", "cidr", "state", "owner-id", "map-public-ip-on-launch",
                             "ipv6-cidr-block-association.ipv6-cidr-block",
                             "ipv6-cidr-block-association.association-id",
                             "ipv6-cidr-block-association.state",
                             "assign-ipv6-address-on-creation"},
            fields=lambda n: {"subnet-id": n.subnet_id, "vpc-id": n.vpc_id,
                              "availability-zone": n.availability_zone,
                              "default-for-az": n.default_for_az, "cidr-block": n.cidr,
                              "cidr": n.cidr, "state": "available", "owner-id": n.account_id,
                              "map-public-ip-on-launch": n.map_public_ip_on_launch,
                              "ipv6-cidr-block-association.ipv6-cidr-block": n.ipv6_cidr,
                              "ipv6-cidr-block-association.association-id":
                                  n.ipv6_association_id,
                              "ipv6-cidr-block-association.state":
                                  "associated" if n.ipv6_cidr else None,
                              "assign-ipv6-address-on-creation": n.assign_ipv6_on_creation},
            view=lambda n, tags: _subnet_view(s, n, tags, region), result_key="Subnets")


@action("ec2", "DeleteSubnet")
def delete_subnet(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        subnet = own_subnet(ctx, s, p["SubnetId"])
        if subnet.default_for_az:
            raise exc.OperationNotPermitted("gureum keeps each account's default subnet")
        live = s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.subnet_id == subnet.subnet_id, models.Instance.state != "terminated"))
        live = live or s.scalar(select(models.NetworkInterface.eni_id).where(
            models.NetworkInterface.subnet_id == subnet.subnet_id).limit(1))
        live = live or any(subnet.subnet_id in lb.subnet_ids for lb in s.scalars(
            select(LoadBalancer).where(LoadBalancer.vpc_id == subnet.vpc_id)))
        if live:
            raise exc.DependencyViolation(
                f"The subnet '{subnet.subnet_id}' has dependencies and cannot be deleted.")
        s.execute(delete(models.RouteTableAssociation).where(
            models.RouteTableAssociation.subnet_id == subnet.subnet_id))
        common.delete_with_tags(s, subnet)
    return {}


# Settings gureum does not apply (DNS64, Outposts, AAAA records): turning one off is a
# no-op (tools send them false) and turning one on is refused.
_UNSUPPORTED_FLAGS = ("EnableDns64", "MapCustomerOwnedIpOnLaunch",
                      "EnableResourceNameDnsAAAARecordOnLaunch")


@action("ec2", "ModifySubnetAttribute")
def modify_subnet_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    changes = {k for k in p if k not in ("SubnetId", "DryRun")}
    if not changes:
        raise exc.MissingParameter("The request must contain an attribute to modify")
    if len(changes) > 1:
        raise exc.InvalidParameterCombination("Only one attribute can be modified at a time")
    (name,) = changes
    value = (p[name] or {}).get("Value") if isinstance(p[name], dict) else p[name]
    if name not in ("MapPublicIpOnLaunch", "AssignIpv6AddressOnCreation",
                    *_UNSUPPORTED_FLAGS) or (name in _UNSUPPORTED_FLAGS and value):
        raise exc.UnsupportedOperation(
            f"Only MapPublicIpOnLaunch and AssignIpv6AddressOnCreation can be modified here, "
            f"not {name}")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        subnet = own_subnet(ctx, s, p["SubnetId"])
        if name == "MapPublicIpOnLaunch":
            subnet.map_public_ip_on_launch = bool(value)
        elif name == "AssignIpv6AddressOnCreation":
            if value and subnet.ipv6_cidr is None:
                raise exc.InvalidParameterValue(
                    f"Subnet {subnet.subnet_id} has no IPv6 CIDR block: "
                    "AssignIpv6AddressOnCreation cannot be enabled")
            subnet.assign_ipv6_on_creation = bool(value)
    return {}
