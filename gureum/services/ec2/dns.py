"""What the VPC resolver answers: instances' private and public DNS names (public names
resolve to the private address inside the VPC, as on EC2) and their reverse records."""

from __future__ import annotations

from dnslib import PTR, QTYPE, RR, A

from gureum.services.ec2.views import private_dns, public_dns
from gureum.store import models

TTL = 60


def zones(region: str) -> tuple[str, ...]:
    return (f"{region}.compute.internal", f"{region}.compute.gureum.internal", "in-addr.arpa")


def answer(name: str, qtype: str, region: str, instances: list[models.Instance]) -> list[RR] | None:
    """Answers for `name` among `instances` (those the asker may see); None if the name is
    not in the cloud's zones."""
    if not any(name == z or name.endswith("." + z) for z in zones(region)):
        return None
    if name.endswith(".in-addr.arpa"):
        octets = name[: -len(".in-addr.arpa")].split(".")
        if len(octets) != 4:
            return []
        address = ".".join(reversed(octets))
        for inst in instances:
            if inst.private_ip == address:
                return [RR(name, QTYPE.PTR, rdata=PTR(private_dns(inst.private_ip, region) + "."), ttl=TTL)] \
                    if qtype in ("PTR", "ANY") else []
        return []
    for inst in instances:
        if name in (private_dns(inst.private_ip, region), public_dns(inst.public_ip, region)):
            return [RR(name, QTYPE.A, rdata=A(inst.private_ip), ttl=TTL)] if qtype in ("A", "ANY") else []
    return []
