"""Elastic network interfaces in the store: the primary one every instance is made with,
what an interface looks like in the API, and what becomes of interfaces when their
instance terminates. Handlers are in `handlers/network_interfaces.py`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.contract import NetworkInterfaceSpec
from gureum.agent.network import mac_for
from gureum.services.ec2 import ids
from gureum.services.ec2.views import private_dns, public_dns
from gureum.store import models


def primary_id(instance_id: str) -> str:
    """The primary interface's id: derived from the instance, as the API named it before
    interfaces had rows (tags and IMDS answers made then stay true)."""
    return ids.derived("eni", instance_id)


def primary_for(inst: models.Instance, description: str = "",
                eni_id: str | None = None) -> models.NetworkInterface:
    """The interface at device index 0 of a new instance (DeleteOnTermination, as the
    ones RunInstances makes); `eni_id` when it gets an existing interface's id instead."""
    return models.NetworkInterface(
        eni_id=eni_id or primary_id(inst.instance_id), account_id=inst.account_id,
        vpc_id=inst.vpc_id, subnet_id=inst.subnet_id,
        availability_zone=inst.availability_zone, private_ip=inst.private_ip,
        secondary_ips=[], security_group_ids=list(inst.security_group_ids),
        description=description, source_dest_check=True, mac_address=mac_for(inst.private_ip),
        status="in-use", instance_id=inst.instance_id, device_index=0,
        attachment_id=ids.derived("eni-attach", inst.instance_id), attach_time=inst.launch_time,
        delete_on_termination=True)


def of_instances(s: Session, instance_ids: list[str]) -> dict[str, list[models.NetworkInterface]]:
    """Each instance's attached interfaces, by device index."""
    out: dict[str, list[models.NetworkInterface]] = {i: [] for i in instance_ids}
    for eni in s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.instance_id.in_(instance_ids)).order_by(
                models.NetworkInterface.device_index)):
        out.setdefault(eni.instance_id or "", []).append(eni)
    return out


def primary_of(s: Session, instance_id: str) -> models.NetworkInterface | None:
    return s.scalar(select(models.NetworkInterface).where(
        models.NetworkInterface.instance_id == instance_id,
        models.NetworkInterface.device_index == 0))


HostInterfaces = tuple[tuple[str, ...], tuple[NetworkInterfaceSpec, ...], bool, tuple[str, ...]]


def host_interfaces(s: Session, instance_ids: list[str]) -> dict[str, HostInterfaces]:
    """What the host makes of each instance's interfaces: eth0's secondary addresses, its
    attached interfaces (device index 1+), eth0's SourceDestCheck and its IPv6 addresses."""
    rows = list(s.scalars(select(models.Subnet)))
    subnets = {sub.subnet_id: sub.cidr for sub in rows}
    ipv6_blocks = {sub.subnet_id: sub.ipv6_cidr or "" for sub in rows}
    out: dict[str, HostInterfaces] = {}
    for instance_id, enis in of_instances(s, instance_ids).items():
        primary = next((e for e in enis if e.device_index == 0), None)
        out[instance_id] = (tuple(primary.secondary_ips) if primary else (), tuple(
            NetworkInterfaceSpec(e.device_index or 0, subnets.get(e.subnet_id, ""),
                                 tuple(e.addresses()), e.source_dest_check,
                                 tuple(e.ipv6_addresses or ()), ipv6_blocks[e.subnet_id])
            for e in enis if e.device_index and e.subnet_id in subnets),
            primary.source_dest_check if primary else True,
            tuple(primary.ipv6_addresses or ()) if primary else ())
    return out


def used_addresses(s: Session, vpc_id: str) -> set[str]:
    out: set[str] = set()
    for eni in s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.vpc_id == vpc_id)):
        out.update(eni.addresses())
    return out


def release_on_termination(s: Session, instance_id: str) -> None:
    """A terminated instance's interfaces: deleted when DeleteOnTermination, else
    detached and available again (as on EC2)."""
    from gureum.services.ec2.handlers import common

    for eni in s.scalars(select(models.NetworkInterface).where(
            models.NetworkInterface.instance_id == instance_id)):
        if eni.delete_on_termination:
            for address in s.scalars(select(models.Address).where(
                    models.Address.eni_id == eni.eni_id)):
                address.eni_id, address.private_ip = None, None
                address.instance_id, address.association_id = None, None
            common.delete_with_tags(s, eni)
        else:
            detach(eni)


def detach(eni: models.NetworkInterface) -> None:
    eni.status, eni.instance_id, eni.device_index = "available", None, None
    eni.attachment_id, eni.attach_time, eni.delete_on_termination = None, None, False


def public_addresses(s: Session, enis: list[models.NetworkInterface]) -> dict[tuple[str, str], str]:
    """(eni id, private address) -> the public address that maps to it: the instance's
    public IP on its primary address, and Elastic IPs associated with an interface."""
    out: dict[tuple[str, str], str] = {}
    attached = [e.instance_id for e in enis if e.instance_id and e.device_index == 0]
    for inst in s.scalars(select(models.Instance).where(
            models.Instance.instance_id.in_(attached))):
        if inst.public_ip:
            out[(primary_id(inst.instance_id), inst.private_ip)] = inst.public_ip
    for address in s.scalars(select(models.Address).where(
            models.Address.eni_id.in_([e.eni_id for e in enis]))):
        if address.private_ip:
            out[(address.eni_id or "", address.private_ip)] = address.public_ip
    # An instance's primary interface made with another id (RunInstances with an
    # existing interface at index 0): its public IP is the instance's.
    for eni in enis:
        if eni.device_index == 0 and eni.eni_id != primary_id(eni.instance_id or "") \
                and (eni.eni_id, eni.private_ip) not in out:
            inst = s.get(models.Instance, eni.instance_id)
            if inst is not None and inst.public_ip:
                out[(eni.eni_id, eni.private_ip)] = inst.public_ip
    return out


def view(eni: models.NetworkInterface, region: str, group_names: dict[str, str],
         public: dict[tuple[str, str], str], dns_hostnames: bool = True,
         tags: dict[str, str] | None = None, for_instance: bool = False) -> dict[str, Any]:
    """An interface as DescribeNetworkInterfaces shows it; `for_instance`: as it appears
    in an instance's NetworkInterfaces (InstanceNetworkInterface: fewer members)."""

    def association(address: str) -> dict[str, Any] | None:
        ip = public.get((eni.eni_id, address))
        if ip is None:
            return None
        return {"PublicIp": ip, "PublicDnsName": public_dns(ip, region) if dns_hostnames
                else "", "IpOwnerId": "amazon"}

    groups = [{"GroupId": g, "GroupName": group_names.get(g, "default")}
              for g in eni.security_group_ids]
    addresses = [{"Primary": ip == eni.private_ip, "PrivateIpAddress": ip,
                  "PrivateDnsName": private_dns(ip, region), "Association": association(ip)}
                 for ip in eni.addresses()]
    out: dict[str, Any] = {
        "NetworkInterfaceId": eni.eni_id, "SubnetId": eni.subnet_id, "VpcId": eni.vpc_id,
        "Description": eni.description, "OwnerId": eni.account_id, "Status": eni.status,
        "MacAddress": eni.mac_address, "PrivateIpAddress": eni.private_ip,
        "PrivateDnsName": private_dns(eni.private_ip, region),
        "SourceDestCheck": eni.source_dest_check, "InterfaceType": eni.interface_type,
        "Groups": groups, "Association": association(eni.private_ip),
        "PrivateIpAddresses": addresses,
        "Ipv6Addresses": [{"Ipv6Address": a, "IsPrimaryIpv6": False}
                          for a in eni.ipv6_addresses or []],
    }
    if eni.instance_id is not None:
        out["Attachment"] = {
            "AttachmentId": eni.attachment_id, "DeviceIndex": eni.device_index,
            "Status": "attached", "AttachTime": eni.attach_time,
            "DeleteOnTermination": eni.delete_on_termination, "NetworkCardIndex": 0}
        if not for_instance:
            out["Attachment"].update({"InstanceId": eni.instance_id,
                                      "InstanceOwnerId": eni.account_id})
    if not for_instance:
        out.update({"AvailabilityZone": eni.availability_zone, "RequesterManaged": eni.interface_type != "interface",
                    "TagSet": [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())]})
    return out
