"""Routes whose target lives inside the VPC: a network interface (CreateRoute
NetworkInterfaceId or InstanceId, the NAT instance pattern) and a NAT gateway. What they
look like in DescribeRouteTables, and what the VPC's router makes of them
(`contract.PolicyRoute`: `ip rule`s in the router, SNAT for NAT gateways)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import PolicyRoute
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import networks
from gureum.store import models

# An interface forwards only while its instance runs (AWS: the route is a blackhole when
# the instance is stopped or terminated, or the interface detached or deleted).
FORWARDING_STATES = ("pending", "running")


def is_internal(target: str) -> bool:
    return target.startswith(("eni-", "nat-"))


def interface_hop(s: Session, eni_id: str) -> str:
    """The address a route to this interface sends to, or "" when it is a blackhole."""
    eni = s.get(models.NetworkInterface, eni_id)
    if eni is None or eni.instance_id is None:
        return ""
    inst = s.get(models.Instance, eni.instance_id)
    return eni.private_ip if inst is not None and inst.state in FORWARDING_STATES else ""


def nat_address(s: Session, nat_id: str, public: set[str] | None = None) -> str:
    """The address a NAT gateway's traffic leaves the VPC as: its private address, as on
    AWS, where the internet gateway then maps it to the Elastic IP. Here the host plays
    that gateway, and with outbound allowed its masquerade and connection marks bring
    the replies back to this address in the VPC, as for any instance ("" unless it is
    available; given the VPC's `public` subnets, also "" for a public gateway whose own
    subnet has no route to an internet gateway, where AWS's would have no way out).
    (Translating to the Elastic IP itself would strand replies: the host holds that
    address on its loopback range and would deliver them locally.)"""
    from gureum.store.nat_models import NatGateway

    nat = s.get(NatGateway, nat_id)
    if nat is None or nat.state != "available":
        return ""
    if public is not None and nat.connectivity_type == "public" and \
            nat.subnet_id not in public:
        return ""
    if nat.connectivity_type == "public" and not nat.allocation_id:
        return ""
    return nat.private_ip


def route_view(s: Session, route: models.Route) -> dict[str, Any]:
    """DescribeRouteTables' fields of a route to an interface or a NAT gateway."""
    out: dict[str, Any] = {"DestinationCidrBlock": route.destination, "Origin": "CreateRoute"}
    if route.gateway_id.startswith("nat-"):
        out["NatGatewayId"] = route.gateway_id
        out["State"] = "active" if nat_address(s, route.gateway_id) else "blackhole"
        return out
    out["NetworkInterfaceId"] = route.gateway_id
    eni = s.get(models.NetworkInterface, route.gateway_id)
    if eni is not None and eni.instance_id:
        out["InstanceId"] = eni.instance_id
        out["InstanceOwnerId"] = eni.account_id
    out["State"] = "active" if interface_hop(s, route.gateway_id) else "blackhole"
    return out


def resolve(s: Session, account_id: str, p: dict[str, Any], table: models.RouteTable,
            destination: str, subnet_cidrs: list[str], vpc_cidrs: list[str]) -> str:
    """The stored target (an `eni-` or `nat-` id) of CreateRoute/ReplaceRoute with
    InstanceId, NetworkInterfaceId or NatGatewayId, checked as AWS does."""
    net = ipaddress.ip_network(destination)
    inside = [c for c in vpc_cidrs if net.subnet_of(ipaddress.ip_network(c))]
    if inside and destination not in subnet_cidrs:
        # AWS: a route more specific than local must name a whole subnet of the VPC.
        raise exc.InvalidParameterValue(
            f"The destination CIDR block {destination} is equal to or more specific than one "
            f"of this VPC's CIDR blocks. This route can target only an interface or an "
            "instance, and its destination must match a subnet's CIDR block.")
    if p.get("NatGatewayId"):
        from gureum.store.nat_models import NatGateway

        nat = s.get(NatGateway, p["NatGatewayId"])
        if nat is None or nat.account_id != account_id or nat.state in ("deleting", "deleted"):
            raise exc.InvalidNatGatewayIDNotFound(
                f"The natGateway ID '{p['NatGatewayId'][:64]}' does not exist")
        if nat.vpc_id != table.vpc_id:
            raise exc.InvalidParameterValue(
                f"route table {table.route_table_id} and NAT gateway {nat.nat_gateway_id} "
                "belong to different networks")
        if inside:
            raise exc.InvalidParameterValue(
                f"The destination CIDR block {destination} is equal to or more specific than "
                "one of this VPC's CIDR blocks. This route can target only an interface or "
                "an instance.")
        return nat.nat_gateway_id
    if p.get("InstanceId"):
        inst = s.get(models.Instance, p["InstanceId"])
        if inst is None or inst.account_id != account_id or inst.state == "terminated":
            raise exc.InvalidInstanceIDNotFound(
                f"The instance ID '{p['InstanceId'][:64]}' does not exist")
        enis = list(s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.instance_id == inst.instance_id)))
        if len(enis) != 1:
            raise exc.InvalidInstanceID(
                f"There are multiple interfaces attached to instance '{inst.instance_id}'. "
                "Please specify an interface ID for the operation instead.")
        eni = enis[0]
    else:
        eni = s.get(models.NetworkInterface, p["NetworkInterfaceId"])
        if eni is None or eni.account_id != account_id:
            raise exc.InvalidNetworkInterfaceIDNotFound(
                f"The networkInterface ID '{p['NetworkInterfaceId'][:64]}' does not exist")
    if eni.vpc_id != table.vpc_id:
        raise exc.InvalidParameterValue(
            f"route table {table.route_table_id} and network interface {eni.eni_id} belong "
            "to different networks")
    return eni.eni_id


def policy_routes(s: Session, vpc: models.Vpc, vpc_cidrs: list[str]) -> tuple[PolicyRoute, ...]:
    """For each route table holding a route to an interface or a NAT gateway, all of its
    routes (the local one too, so longest-prefix still holds between them) as rules for
    the subnets using it. Tables without such routes keep the router's main table."""
    tables = {t.route_table_id: t for t in s.scalars(select(models.RouteTable).where(
        models.RouteTable.vpc_id == vpc.vpc_id))}
    routes_of: dict[str, list[models.Route]] = {}
    for route in s.scalars(select(models.Route).where(
            models.Route.route_table_id.in_(list(tables)))):
        routes_of.setdefault(route.route_table_id, []).append(route)
    wanted = {t for t, routes in routes_of.items() if any(is_internal(r.gateway_id) for r in routes)}
    if not wanted:
        return ()
    main = next((t for t, row in tables.items() if row.is_main), "")
    explicit = {a.subnet_id: a.route_table_id for a in s.scalars(
        select(models.RouteTableAssociation).where(
            models.RouteTableAssociation.route_table_id.in_(list(tables))))}
    sources: dict[str, list[str]] = {}
    for subnet in s.scalars(select(models.Subnet).where(
            models.Subnet.vpc_id == vpc.vpc_id).order_by(models.Subnet.cidr)):
        sources.setdefault(explicit.get(subnet.subnet_id, main), []).append(subnet.cidr)
    public = networks.public_subnet_ids(s, vpc.vpc_id)
    out: dict[tuple[str, str, str], list[str]] = {}  # (destination, via, snat) -> sources
    for table_id in sorted(wanted):
        subnets = sources.get(table_id, [])
        if not subnets:
            continue
        targets = [(c, "", "") for c in vpc_cidrs]
        for route in routes_of[table_id]:
            if ":" in route.destination:  # IPv6 routes are the router's IPv6 table's
                continue
            if route.gateway_id.startswith("eni-"):
                targets.append((route.destination,
                                interface_hop(s, route.gateway_id) or "blackhole", ""))
            elif route.gateway_id.startswith("nat-"):
                snat = nat_address(s, route.gateway_id, public)
                targets.append((route.destination, "" if snat else "blackhole", snat))
            else:  # an internet gateway or a peering: the main table knows them
                targets.append((route.destination, "", ""))
        for key in targets:
            out.setdefault(key, []).extend(subnets)
    return tuple(PolicyRoute(dest, tuple(sorted(srcs)), via, snat)
                 for (dest, via, snat), srcs in sorted(out.items()))
