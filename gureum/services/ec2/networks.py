"""VPCs, subnets, internet gateways and route tables as the store holds them: the rules
AWS applies to their addresses, each account's default network, and what the host must
build for a VPC (`VpcNetwork`)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.network import VpcNetwork
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import ids
from gureum.services.ec2 import security_groups as sg
from gureum.store import models

if TYPE_CHECKING:
    from gureum.config import Config

MAX_NET_INDEX = 4095  # host marks keep 12 bits for the VPC
# Ranges an instance address may never take: they mean something else on every host.
FORBIDDEN = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")]


def parse_cidr(value: str, parameter: str = "cidrBlock") -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise exc.InvalidParameterValue(
            f"Value ({value[:64]}) for parameter {parameter} is invalid. This is not a valid "
            "CIDR block.") from None
    return net


def check_vpc_cidr(value: str) -> ipaddress.IPv4Network:
    net = parse_cidr(value)
    if not 16 <= net.prefixlen <= 28 or any(net.overlaps(f) for f in FORBIDDEN):
        raise exc.InvalidVpcRange(f"The CIDR '{value}' is invalid.")
    return net


def check_subnet_cidr(session: Session, vpc: models.Vpc, value: str) -> ipaddress.IPv4Network:
    net = parse_cidr(value)
    if not 16 <= net.prefixlen <= 28 or not any(
            net.subnet_of(ipaddress.ip_network(block)) for block in vpc_cidrs(session, vpc)):
        raise exc.InvalidSubnetRange(f"The CIDR '{value}' is invalid.")
    for other in session.scalars(select(models.Subnet).where(models.Subnet.vpc_id == vpc.vpc_id)):
        if net.overlaps(ipaddress.ip_network(other.cidr)):
            raise exc.InvalidSubnetConflict(f"The CIDR '{value}' conflicts with another subnet")
    return net


def vpc_cidrs(session: Session, vpc: models.Vpc) -> list[str]:
    """The VPC's IPv4 blocks: the primary first, then its secondary ones."""
    from gureum.store.nat_models import VpcCidrBlock

    return [vpc.cidr, *session.scalars(select(VpcCidrBlock.cidr).where(
        VpcCidrBlock.vpc_id == vpc.vpc_id).order_by(VpcCidrBlock.created_at))]


def default_vpc_id(account_id: str) -> str:
    return ids.derived("vpc", account_id, "default")


def default_subnet_id(account_id: str, zone: str) -> str:
    return ids.derived("subnet", account_id, zone)


def default_group_id(account_id: str, vpc_id: str, is_default_vpc: bool) -> str:
    # The default VPC's group keeps the id it had before VPCs were stored.
    return ids.derived("sg", account_id, "default" if is_default_vpc else vpc_id)


def free_net_index(session: Session) -> int:
    used = set(session.scalars(select(models.Vpc.net_index)))
    for index in range(1, MAX_NET_INDEX + 1):
        if index not in used:
            return index
    raise exc.VpcLimitExceeded("The maximum number of VPCs on this cloud has been reached.")


def create_vpc(session: Session, account_id: str, cidr: str, vpc_id: str | None = None,
               is_default: bool = False) -> models.Vpc:
    """The VPC with its main route table and default security group, as AWS makes them."""
    vpc = models.Vpc(vpc_id=vpc_id or ids.new("vpc"), account_id=account_id, cidr=cidr,
                     is_default=is_default, net_index=free_net_index(session),
                     enable_dns_support=True, enable_dns_hostnames=is_default)
    session.add(vpc)
    session.flush()
    main_id = ids.derived("rtb", vpc.vpc_id) if is_default else ids.new("rtb")
    session.add(models.RouteTable(route_table_id=main_id, account_id=account_id,
                                  vpc_id=vpc.vpc_id, is_main=True))
    sg.default_group(session, account_id, vpc.vpc_id,
                     default_group_id(account_id, vpc.vpc_id, is_default), quick_start=is_default)
    session.flush()
    return vpc


def ensure_default_network(session: Session, config: Config, account_id: str) -> models.Vpc:
    """The account's default VPC, made on first use like AWS's: a subnet that maps public
    addresses, an attached internet gateway and a main route to it."""
    vpc = session.get(models.Vpc, default_vpc_id(account_id))
    if vpc is not None:
        return vpc
    vpc = create_vpc(session, account_id, config.vpc_cidr, default_vpc_id(account_id),
                     is_default=True)
    zone = config.region + "a"
    session.add(models.Subnet(subnet_id=default_subnet_id(account_id, zone), account_id=account_id,
                              vpc_id=vpc.vpc_id, cidr=config.subnet_cidr, availability_zone=zone,
                              default_for_az=True, map_public_ip_on_launch=True))
    igw_id = ids.derived("igw", account_id, "default")
    session.add(models.InternetGateway(gateway_id=igw_id, account_id=account_id,
                                       vpc_id=vpc.vpc_id))
    session.add(models.Route(route_table_id=main_table(session, vpc.vpc_id).route_table_id,
                             destination="0.0.0.0/0", gateway_id=igw_id))
    session.flush()
    return vpc


def main_table(session: Session, vpc_id: str) -> models.RouteTable:
    table = session.scalar(select(models.RouteTable).where(
        models.RouteTable.vpc_id == vpc_id, models.RouteTable.is_main.is_(True)))
    assert table is not None
    return table


def public_subnet_ids(session: Session, vpc_id: str | None = None) -> set[str]:
    """Subnets whose route table sends 0.0.0.0/0 to an internet gateway attached to
    their VPC: the only ones reachable on public addresses, and the only ones that may
    reach out when the operator allows outbound traffic. A fixed number of queries,
    whatever the number of subnets (this runs for every launch)."""
    def scoped(query, column):  # noqa: ANN001, ANN202
        return query if vpc_id is None else query.where(column == vpc_id)

    attached = {g.gateway_id: g.vpc_id for g in session.scalars(scoped(
        select(models.InternetGateway), models.InternetGateway.vpc_id)) if g.vpc_id}
    tables = {t.route_table_id: t for t in session.scalars(scoped(
        select(models.RouteTable), models.RouteTable.vpc_id))}
    public_tables = {r.route_table_id for r in session.scalars(select(models.Route).where(
        models.Route.destination == "0.0.0.0/0", models.Route.route_table_id.in_(list(tables))))
        if attached.get(r.gateway_id) == tables[r.route_table_id].vpc_id}
    main = {t.vpc_id: t.route_table_id for t in tables.values() if t.is_main}
    explicit = {a.subnet_id: a.route_table_id for a in session.scalars(
        select(models.RouteTableAssociation).where(
            models.RouteTableAssociation.route_table_id.in_(list(tables))))}
    return {n.subnet_id for n in session.scalars(scoped(select(models.Subnet),
                                                         models.Subnet.vpc_id))
            if explicit.get(n.subnet_id, main.get(n.vpc_id)) in public_tables}


def vpc_network(session: Session, vpc: models.Vpc, public: set[str] | None = None) -> VpcNetwork:
    subnets = list(session.scalars(select(models.Subnet).where(
        models.Subnet.vpc_id == vpc.vpc_id).order_by(models.Subnet.cidr)))
    if public is None:
        public = public_subnet_ids(session, vpc.vpc_id)
    from gureum.services.ec2 import peering, route_targets

    blocks = vpc_cidrs(session, vpc)

    return VpcNetwork(vpc_id=vpc.vpc_id, index=vpc.net_index, cidr=vpc.cidr,
                      subnets=tuple(s.cidr for s in subnets),
                      internet_subnets=tuple(s.cidr for s in subnets if s.subnet_id in public),
                      peerings=peering.links(session, vpc),
                      policy_routes=route_targets.policy_routes(session, vpc, blocks),
                      secondary_cidrs=tuple(blocks[1:]),
                      ipv6_subnets=tuple(s.ipv6_cidr for s in subnets if s.ipv6_cidr),
                      ipv6_egress_subnets=ipv6_egress_subnets(session, vpc, subnets))


def ipv6_egress_subnets(session: Session, vpc: models.Vpc,
                        subnets: list[models.Subnet]) -> tuple[str, ...]:
    """The IPv6 /64s of subnets whose route table has an IPv6 route to an egress-only
    gateway of the VPC or to its attached internet gateway."""
    if not any(s.ipv6_cidr for s in subnets):
        return ()
    tables = {t.route_table_id: t for t in session.scalars(select(models.RouteTable).where(
        models.RouteTable.vpc_id == vpc.vpc_id))}
    gateways = set(session.scalars(select(models.EgressOnlyInternetGateway.gateway_id).where(
        models.EgressOnlyInternetGateway.vpc_id == vpc.vpc_id)))
    gateways |= set(session.scalars(select(models.InternetGateway.gateway_id).where(
        models.InternetGateway.vpc_id == vpc.vpc_id)))
    egress = {r.route_table_id for r in session.scalars(select(models.Route).where(
        models.Route.route_table_id.in_(list(tables)))) if ":" in r.destination
        and r.gateway_id in gateways}
    if not egress:
        return ()
    main = next((t for t, row in tables.items() if row.is_main), "")
    explicit = {a.subnet_id: a.route_table_id for a in session.scalars(
        select(models.RouteTableAssociation).where(
            models.RouteTableAssociation.route_table_id.in_(list(tables))))}
    return tuple(s.ipv6_cidr for s in subnets
                 if s.ipv6_cidr and explicit.get(s.subnet_id, main) in egress)
