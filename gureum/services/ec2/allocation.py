"""Allocating slots (uid range + veth name), private and public addresses.

Called inside a store write transaction, so two launches never take the same value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.store import models
from gureum.store.elbv2_models import LoadBalancer

MAX_SLOTS = 16384


def _live(session: Session, column):  # noqa: ANN001, ANN202
    return set(session.scalars(select(column).where(models.Instance.state != "terminated")))


def free_slots(session: Session, host_id: str | None = None,
               control: bool = True) -> Iterator[int]:
    """Slots name network ports and uid ranges on a host: instances and load balancers
    share them. Without `host_id`, free on every host (load balancers); with it, free on
    that host (`control`: the control host, which also holds load balancers and the
    instances placed before hosts existed)."""
    query = select(models.Instance.slot).where(models.Instance.state != "terminated")
    if host_id is not None:
        on_host = models.Instance.host_id == host_id
        query = query.where(or_(on_host, models.Instance.host_id.is_(None)) if control
                            else on_host)
    used = set(session.scalars(query))
    if host_id is None or control:
        used |= set(session.scalars(select(LoadBalancer.slot)))
    return (n for n in range(1, MAX_SLOTS) if n not in used)


def free_private_ips(session: Session, vpc_id: str, subnet_cidr: str) -> Iterator[str]:
    used = set(session.scalars(select(models.Instance.private_ip).where(
        models.Instance.state != "terminated", models.Instance.vpc_id == vpc_id)))
    used |= set(session.scalars(select(LoadBalancer.private_ip).where(
        LoadBalancer.vpc_id == vpc_id)))
    for addresses in session.execute(select(
            models.NetworkInterface.private_ip, models.NetworkInterface.secondary_ips).where(
                models.NetworkInterface.vpc_id == vpc_id)):
        used.add(addresses[0])
        used.update(addresses[1] or [])
    net = ipaddress.ip_network(subnet_cidr)
    # AWS reserves network, +1 router, +2 DNS, +3 future, and broadcast.
    first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
    return (str(ipaddress.ip_address(n)) for n in range(first, last + 1)
            if str(ipaddress.ip_address(n)) not in used)


def _used_public_ips(session: Session) -> set[str]:
    used = set(session.scalars(select(models.Instance.public_ip).where(
        models.Instance.public_ip.is_not(None))))
    used |= set(session.scalars(select(LoadBalancer.public_ip).where(
        LoadBalancer.public_ip.is_not(None))))
    return used | set(session.scalars(select(models.Address.public_ip)))  # EIPs stay held


def is_free_public_ip(session: Session, pool_cidr: str, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    net = ipaddress.ip_network(pool_cidr)
    usable = net.network_address < ip < net.broadcast_address
    return usable and address not in _used_public_ips(session)


def free_public_ips(session: Session, pool_cidr: str) -> Iterator[str]:
    used = _used_public_ips(session)
    net = ipaddress.ip_network(pool_cidr)
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    return (str(ipaddress.ip_address(n)) for n in range(first, last + 1)
            if str(ipaddress.ip_address(n)) not in used)
