"""What the VPC resolver answers: instances' private and public DNS names (public names
resolve to the private address inside the VPC, as on EC2) and their reverse records.
Built here as plain records and served by the host's resolver."""

from __future__ import annotations

from gureum.agent.contract import DnsRecord
from gureum.services.ec2.views import private_dns, public_dns
from gureum.store import models

TTL = 60


def zones(region: str) -> tuple[str, ...]:
    return (f"{region}.compute.internal", f"{region}.compute.gureum.internal", "in-addr.arpa")


def reverse_name(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


def records(instances: list[models.Instance], region: str) -> list[DnsRecord]:
    """The names of `instances` (those the askers may see)."""
    out: list[DnsRecord] = []
    for inst in instances:
        local = private_dns(inst.private_ip, region)
        out.append((local.lower(), "A", inst.private_ip))
        if inst.public_ip:
            out.append((public_dns(inst.public_ip, region).lower(), "A", inst.private_ip))
        out.append((reverse_name(inst.private_ip), "PTR", local + "."))
    return out
