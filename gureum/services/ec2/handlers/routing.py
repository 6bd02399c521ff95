"""Internet gateways and route tables. A subnet is public when its route table sends
0.0.0.0/0 to an internet gateway attached to its VPC; only then do public addresses reach
its instances (and, where the operator allows outbound traffic, they reach out). Routes
may also go to a peering, a network interface or an instance (`route_targets`), or a NAT
gateway."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids, networks, peering, route_targets
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.vpcs import own_subnet, own_vpc
from gureum.services.ec2.views import tag_list
from gureum.store import models
from gureum.store.vpc_options_models import VpcPeeringConnection


# -- internet gateways -----------------------------------------------------------------
def _igw_view(igw: models.InternetGateway, tags: dict[str, str]) -> dict[str, Any]:
    return {"InternetGatewayId": igw.gateway_id, "OwnerId": igw.account_id,
            "Attachments": [{"VpcId": igw.vpc_id, "State": "available"}] if igw.vpc_id else [],
            "Tags": tag_list(tags) or None}


def _igw_not_found(gateway_id: str) -> Exception:
    return exc.InvalidInternetGatewayIDNotFound(
        f"The internetGateway ID '{gateway_id[:64]}' does not exist")


def _own_igw(ctx: RequestContext, s: Any, gateway_id: str) -> models.InternetGateway:
    return common.owned(s, ctx.account_id, models.InternetGateway, gateway_id, _igw_not_found)


@action("ec2", "CreateInternetGateway")
def create_internet_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = common.tags_from_specs(p, "internet-gateway")
    with ctx.cloud.store.write() as s:
        igw = models.InternetGateway(gateway_id=ids.new("igw"), account_id=ctx.account_id)
        s.add(igw)
        s.flush()
        common.put_tags(s, ctx.account_id, igw.gateway_id, tags)
        return {"InternetGateway": _igw_view(igw, dict(tags))}


@action("ec2", "DescribeInternetGateways")
def describe_internet_gateways(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.InternetGateway).where(
            models.InternetGateway.account_id == ctx.account_id)
            .order_by(models.InternetGateway.created_at)))
        return common.describe(
            s, ctx.account_id, p, rows, id_param="InternetGatewayIds",
            id_of=lambda g: g.gateway_id,
            not_found=_igw_not_found,
            filters_allowed={"internet-gateway-id", "attachment.vpc-id", "attachment.state",
                             "owner-id"},
            fields=lambda g: {"internet-gateway-id": g.gateway_id, "attachment.vpc-id": g.vpc_id,
                              "attachment.state": "available" if g.vpc_id else None,
                              "owner-id": g.account_id},
            view=_igw_view, result_key="InternetGateways")


@action("ec2", "AttachInternetGateway")
def attach_internet_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        igw = _own_igw(ctx, s, p["InternetGatewayId"])
        vpc = own_vpc(ctx, s, p["VpcId"])
        if igw.vpc_id:
            raise exc.ResourceAlreadyAssociated(
                f"resource {igw.gateway_id} is already attached to network {igw.vpc_id}")
        other = s.scalar(select(models.InternetGateway).where(
            models.InternetGateway.vpc_id == vpc.vpc_id))
        if other is not None:
            raise exc.ResourceAlreadyAssociated(
                f"Network {vpc.vpc_id} already has an internet gateway attached")
        igw.vpc_id = vpc.vpc_id
    return {}


@action("ec2", "DetachInternetGateway")
def detach_internet_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        igw = _own_igw(ctx, s, p["InternetGatewayId"])
        vpc = own_vpc(ctx, s, p["VpcId"])
        if igw.vpc_id != vpc.vpc_id:
            raise exc.GatewayNotAttached(
                f"resource {igw.gateway_id} is not attached to network {vpc.vpc_id}")
        mapped = s.scalar(select(models.Instance).where(
            models.Instance.vpc_id == vpc.vpc_id, models.Instance.public_ip.is_not(None),
            models.Instance.state != "terminated"))
        if mapped is not None:
            raise exc.DependencyViolation(
                f"Network {vpc.vpc_id} has some mapped public address(es). Please unmap those "
                "public address(es) before detaching the gateway.")
        igw.vpc_id = None
    return {}


@action("ec2", "DeleteInternetGateway")
def delete_internet_gateway(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        igw = _own_igw(ctx, s, p["InternetGatewayId"])
        if igw.vpc_id:
            raise exc.DependencyViolation(
                f"The internetGateway '{igw.gateway_id}' has dependencies and cannot be deleted.")
        common.delete_with_tags(s, igw)
    return {}


# -- route tables ----------------------------------------------------------------------
def _table_not_found(table_id: str) -> Exception:
    return exc.InvalidRouteTableIDNotFound(f"The routeTable ID '{table_id[:64]}' does not exist")


def _own_table(ctx: RequestContext, s: Any, table_id: str) -> models.RouteTable:
    return common.owned(s, ctx.account_id, models.RouteTable, table_id, _table_not_found)


def _table_view(s: Any, table: models.RouteTable, tags: dict[str, str]) -> dict[str, Any]:
    vpc = s.get(models.Vpc, table.vpc_id)
    routes = [{"DestinationCidrBlock": cidr, "GatewayId": "local", "State": "active",
               "Origin": "CreateRouteTable"} for cidr in networks.vpc_cidrs(s, vpc)]
    if vpc.ipv6_cidr:
        routes.append({"DestinationIpv6CidrBlock": vpc.ipv6_cidr, "GatewayId": "local",
                       "State": "active", "Origin": "CreateRouteTable"})
    for route in s.scalars(select(models.Route).where(
            models.Route.route_table_id == table.route_table_id)):
        if ":" in route.destination:
            routes.append(_ipv6_route_view(s, route, table))
            continue
        if route_targets.is_internal(route.gateway_id):
            routes.append(route_targets.route_view(s, route))
            continue
        if route.gateway_id.startswith("pcx-"):
            pcx = s.get(VpcPeeringConnection, route.gateway_id)
            routes.append({"DestinationCidrBlock": route.destination,
                           "VpcPeeringConnectionId": route.gateway_id,
                           "State": "active" if pcx and pcx.status == "active" else "blackhole",
                           "Origin": "CreateRoute"})
            continue
        igw = s.get(models.InternetGateway, route.gateway_id)
        routes.append({"DestinationCidrBlock": route.destination, "GatewayId": route.gateway_id,
                       "State": "active" if igw and igw.vpc_id == table.vpc_id else "blackhole",
                       "Origin": "CreateRoute"})
    assocs = [{"Main": True, "RouteTableAssociationId": ids.derived("rtbassoc", table.route_table_id),
               "RouteTableId": table.route_table_id,
               "AssociationState": {"State": "associated"}}] if table.is_main else []
    for assoc in s.scalars(select(models.RouteTableAssociation).where(
            models.RouteTableAssociation.route_table_id == table.route_table_id)):
        assocs.append({"Main": False, "RouteTableAssociationId": assoc.association_id,
                       "RouteTableId": table.route_table_id, "SubnetId": assoc.subnet_id,
                       "AssociationState": {"State": "associated"}})
    return {"RouteTableId": table.route_table_id, "VpcId": table.vpc_id,
            "OwnerId": table.account_id, "Routes": routes, "Associations": assocs,
            "PropagatingVgws": [], "Tags": tag_list(tags) or None}


def _ipv6_route_view(s: Any, route: models.Route, table: models.RouteTable) -> dict[str, Any]:
    if route.gateway_id.startswith("eigw-"):
        eigw = s.get(models.EgressOnlyInternetGateway, route.gateway_id)
        live = eigw is not None and eigw.vpc_id == table.vpc_id
        target = {"EgressOnlyInternetGatewayId": route.gateway_id}
    else:
        igw = s.get(models.InternetGateway, route.gateway_id)
        live = igw is not None and igw.vpc_id == table.vpc_id
        target = {"GatewayId": route.gateway_id}
    return {"DestinationIpv6CidrBlock": route.destination, **target,
            "State": "active" if live else "blackhole", "Origin": "CreateRoute"}


@action("ec2", "CreateRouteTable")
def create_route_table(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = common.tags_from_specs(p, "route-table")
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.write() as s:
        vpc = own_vpc(ctx, s, p["VpcId"])
        table = models.RouteTable(route_table_id=ids.new("rtb"), account_id=ctx.account_id,
                                  vpc_id=vpc.vpc_id)
        s.add(table)
        s.flush()
        common.put_tags(s, ctx.account_id, table.route_table_id, tags)
        return {"RouteTable": _table_view(s, table, dict(tags))}


@action("ec2", "DescribeRouteTables")
def describe_route_tables(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    ctx.cloud.ensure_default_network(ctx.account_id)
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(models.RouteTable).where(
            models.RouteTable.account_id == ctx.account_id).order_by(models.RouteTable.created_at)))

        def fields(t: models.RouteTable) -> dict[str, Any]:
            view = _table_view(s, t, {})
            return {"route-table-id": t.route_table_id, "vpc-id": t.vpc_id,
                    "owner-id": t.account_id, "association.main": t.is_main,
                    "association.subnet-id": [a.get("SubnetId") for a in view["Associations"]],
                    "route.gateway-id": [r.get("GatewayId") for r in view["Routes"]],
                    "route.vpc-peering-connection-id": [r.get("VpcPeeringConnectionId")
                                                        for r in view["Routes"]],
                    "route.nat-gateway-id": [r.get("NatGatewayId") for r in view["Routes"]],
                    "route.instance-id": [r.get("InstanceId") for r in view["Routes"]],
                    "route.state": [r.get("State") for r in view["Routes"]],
                    "route.origin": [r.get("Origin") for r in view["Routes"]],
                    "route.destination-cidr-block": [r.get("DestinationCidrBlock")
                                                     for r in view["Routes"]],
                    "route.destination-ipv6-cidr-block": [r.get("DestinationIpv6CidrBlock")
                                                          for r in view["Routes"]],
                    "route.egress-only-internet-gateway-id": [
                        r.get("EgressOnlyInternetGatewayId") for r in view["Routes"]]}

        return common.describe(
            s, ctx.account_id, p, rows, id_param="RouteTableIds", id_of=lambda t: t.route_table_id,
            not_found=_table_not_found,
            filters_allowed={"route-table-id", "vpc-id", "owner-id", "association.main",
                             "association.subnet-id", "route.gateway-id",
                             "route.destination-cidr-block", "route.vpc-peering-connection-id",
                             "route.nat-gateway-id", "route.instance-id", "route.state",
                             "route.origin", "route.destination-ipv6-cidr-block",
                             "route.egress-only-internet-gateway-id"},
            fields=fields, view=lambda t, tags: _table_view(s, t, tags),
            result_key="RouteTables")


def _route_target(ctx: RequestContext, s: Any, p: dict[str, Any],
                  table: models.RouteTable) -> tuple[str, str]:
    targets = [k for k in ("GatewayId", "NatGatewayId", "InstanceId", "NetworkInterfaceId",
                           "VpcPeeringConnectionId", "TransitGatewayId", "LocalGatewayId",
                           "CarrierGatewayId", "EgressOnlyInternetGatewayId", "VpcEndpointId",
                           "CoreNetworkArn") if p.get(k)]
    if p.get("DestinationPrefixListId"):
        raise exc.UnsupportedOperation("Prefix-list destinations are not supported")
    if p.get("DestinationIpv6CidrBlock"):
        if p.get("DestinationCidrBlock"):
            raise exc.InvalidParameterCombination(
                "Only one of DestinationCidrBlock and DestinationIpv6CidrBlock may be given")
        if len(targets) > 1:
            raise exc.InvalidParameterCombination("Only one route target may be given")
        return _ipv6_target(ctx, s, p, table, targets)
    if not p.get("DestinationCidrBlock"):
        raise exc.MissingParameter("The request must contain the parameter destinationCidrBlock")
    if len(targets) > 1:
        raise exc.InvalidParameterCombination("Only one route target may be given")
    if targets == ["VpcPeeringConnectionId"]:
        destination = str(networks.parse_cidr(p["DestinationCidrBlock"], "destinationCidrBlock"))
        pcx = peering.visible(s, ctx.account_id, p["VpcPeeringConnectionId"])
        if table.vpc_id not in (pcx.requester_vpc_id, pcx.accepter_vpc_id) or \
                pcx.status not in peering.LIVE:
            raise peering.not_found(pcx.peering_id)
        return destination, pcx.peering_id
    if targets in (["InstanceId"], ["NetworkInterfaceId"], ["NatGatewayId"]):
        destination = str(networks.parse_cidr(p["DestinationCidrBlock"], "destinationCidrBlock"))
        vpc = s.get(models.Vpc, table.vpc_id)
        subnets = list(s.scalars(select(models.Subnet.cidr).where(
            models.Subnet.vpc_id == table.vpc_id)))
        return destination, route_targets.resolve(s, ctx.account_id, p, table, destination,
                                                  subnets, networks.vpc_cidrs(s, vpc))
    if targets != ["GatewayId"]:
        if targets:
            raise exc.UnsupportedOperation(f"Routes to a {targets[0]} are not supported here")
        raise exc.MissingParameter("The request must contain a route target (GatewayId)")
    destination = str(networks.parse_cidr(p["DestinationCidrBlock"], "destinationCidrBlock"))
    if destination != "0.0.0.0/0":
        raise exc.UnsupportedOperation(
            "Only the default route (0.0.0.0/0) to an internet gateway is supported here")
    igw = s.get(models.InternetGateway, p["GatewayId"])
    if igw is None or igw.account_id != ctx.account_id:
        raise exc.InvalidGatewayIDNotFound(f"The gateway ID '{p['GatewayId'][:64]}' does not exist")
    if igw.vpc_id != table.vpc_id:
        raise exc.InvalidParameterValue(
            f"route table {table.route_table_id} and network gateway {igw.gateway_id} belong "
            "to different networks")
    return destination, igw.gateway_id


def _ipv6_target(ctx: RequestContext, s: Any, p: dict[str, Any], table: models.RouteTable,
                 targets: list[str]) -> tuple[str, str]:
    """An IPv6 route: to an egress-only internet gateway of the table's VPC, or ::/0 to
    its attached internet gateway."""
    destination = _ipv6_destination(p)
    if targets == ["EgressOnlyInternetGatewayId"]:
        gateway_id = p["EgressOnlyInternetGatewayId"]
        eigw = s.get(models.EgressOnlyInternetGateway, gateway_id)
        if eigw is None or eigw.account_id != ctx.account_id:
            raise exc.InvalidGatewayIDNotFound(f"The gateway ID '{gateway_id[:64]}' does not exist")
        vpc_id = eigw.vpc_id
    elif targets == ["GatewayId"]:
        if destination != "::/0":
            raise exc.UnsupportedOperation(
                "Only the default IPv6 route (::/0) to an internet gateway is supported here")
        gateway_id = p["GatewayId"]
        igw = s.get(models.InternetGateway, gateway_id)
        if igw is None or igw.account_id != ctx.account_id:
            raise exc.InvalidGatewayIDNotFound(f"The gateway ID '{gateway_id[:64]}' does not exist")
        vpc_id = igw.vpc_id or ""
    elif targets:
        raise exc.UnsupportedOperation(f"IPv6 routes to a {targets[0]} are not supported here")
    else:
        raise exc.MissingParameter(
            "The request must contain a route target (EgressOnlyInternetGatewayId)")
    if vpc_id != table.vpc_id:
        raise exc.InvalidParameterValue(
            f"route table {table.route_table_id} and network gateway {gateway_id} belong "
            "to different networks")
    return destination, gateway_id


def _ipv6_destination(p: dict[str, Any]) -> str:
    value = p.get("DestinationIpv6CidrBlock") or ""
    try:
        return str(ipaddress.IPv6Network(value, strict=True))
    except ValueError:
        raise exc.InvalidParameterValue(
            f"Value ({value[:64]}) for parameter destinationIpv6CidrBlock is invalid. This is "
            "not a valid IPv6 CIDR block.") from None


@action("ec2", "CreateRoute")
def create_route(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        table = _own_table(ctx, s, p["RouteTableId"])
        destination, gateway = _route_target(ctx, s, p, table)
        if s.get(models.Route, (table.route_table_id, destination)) is not None:
            raise exc.RouteAlreadyExists(
                f"The route identified by {destination} already exists.")
        s.add(models.Route(route_table_id=table.route_table_id, destination=destination,
                           gateway_id=gateway))
    return {"Return": True}


def _destination(p: dict[str, Any]) -> str:
    if p.get("DestinationIpv6CidrBlock"):
        return _ipv6_destination(p)
    return str(networks.parse_cidr(p.get("DestinationCidrBlock") or "", "destinationCidrBlock"))


@action("ec2", "ReplaceRoute")
def replace_route(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        table = _own_table(ctx, s, p["RouteTableId"])
        if p.get("DestinationCidrBlock") or p.get("DestinationIpv6CidrBlock"):
            destination = _destination(p)
            # AWS answers a missing route here with InvalidParameterValue (DeleteRoute's is
            # InvalidRoute.NotFound), before it looks at the new target.
            if s.get(models.Route, (table.route_table_id, destination)) is None:
                raise exc.InvalidParameterValue(
                    f"There is no route defined for '{destination}' in the route table. "
                    "Use CreateRoute instead.")
        destination, gateway = _route_target(ctx, s, p, table)
        s.get(models.Route, (table.route_table_id, destination)).gateway_id = gateway
    return {}


@action("ec2", "DeleteRoute")
def delete_route(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        table = _own_table(ctx, s, p["RouteTableId"])
        destination = _destination(p)
        vpc = s.get(models.Vpc, table.vpc_id)
        if destination in [*networks.vpc_cidrs(s, vpc), vpc.ipv6_cidr]:
            raise exc.InvalidParameterValue(
                f"cannot remove local route {destination} in route table {table.route_table_id}")
        route = s.get(models.Route, (table.route_table_id, destination))
        if route is None:
            raise exc.InvalidRouteNotFound(f"no route with destination-cidr-block {destination} "
                                           f"in route table {table.route_table_id}")
        s.delete(route)
    return {}


@action("ec2", "AssociateRouteTable")
def associate_route_table(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("GatewayId"):
        raise exc.UnsupportedOperation("Only subnets can be associated with a route table here")
    if not p.get("SubnetId"):
        raise exc.MissingParameter("The request must contain the parameter SubnetId")
    with ctx.cloud.store.write() as s:
        table = _own_table(ctx, s, p["RouteTableId"])
        subnet = own_subnet(ctx, s, p["SubnetId"])
        if subnet.vpc_id != table.vpc_id:
            raise exc.InvalidParameterValue(
                f"Route table {table.route_table_id} and subnet {subnet.subnet_id} belong to "
                "different networks")
        if s.scalar(select(models.RouteTableAssociation).where(
                models.RouteTableAssociation.subnet_id == subnet.subnet_id)) is not None:
            raise exc.ResourceAlreadyAssociated(
                f"the specified association for route table {table.route_table_id} conflicts "
                "with an existing association")
        assoc = models.RouteTableAssociation(association_id=ids.new("rtbassoc"),
                                             route_table_id=table.route_table_id,
                                             subnet_id=subnet.subnet_id)
        s.add(assoc)
    return {"AssociationId": assoc.association_id,
            "AssociationState": {"State": "associated"}}


def _is_main_association(s: Any, account_id: str, association_id: str) -> bool:
    """Whether this id is the (derived) main association of one of the account's tables."""
    return any(ids.derived("rtbassoc", table_id) == association_id for table_id in s.scalars(
        select(models.RouteTable.route_table_id).where(models.RouteTable.account_id == account_id,
                                                       models.RouteTable.is_main)))


@action("ec2", "DisassociateRouteTable")
def disassociate_route_table(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        assoc = s.get(models.RouteTableAssociation, p["AssociationId"])
        table = s.get(models.RouteTable, assoc.route_table_id) if assoc else None
        if assoc is None and _is_main_association(s, ctx.account_id, p["AssociationId"]):
            raise exc.InvalidParameterValue(
                f"cannot disassociate the main route table association {p['AssociationId']}")
        if assoc is None or table is None or table.account_id != ctx.account_id:
            raise exc.InvalidAssociationIDNotFound(
                f"The association ID '{p['AssociationId'][:64]}' does not exist")
        s.delete(assoc)
    return {}


@action("ec2", "DeleteRouteTable")
def delete_route_table(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        table = _own_table(ctx, s, p["RouteTableId"])
        in_use = s.scalar(select(models.RouteTableAssociation).where(
            models.RouteTableAssociation.route_table_id == table.route_table_id))
        if table.is_main or in_use is not None:
            raise exc.DependencyViolation(
                f"The routeTable '{table.route_table_id}' has dependencies and cannot be deleted.")
        s.execute(delete(models.Route).where(models.Route.route_table_id == table.route_table_id))
        common.delete_with_tags(s, table)
    return {}
