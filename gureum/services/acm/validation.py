"""Domain validation: which names gureum validates itself (it is their DNS authority),
and the record ACM asks for of any other name."""

from __future__ import annotations

import hashlib

from gureum.services.elbv2.zones import APPS_ZONE, DNS_ZONE

OWN_ZONES = (APPS_ZONE, DNS_ZONE)


def in_own_zone(name: str) -> bool:
    bare = name.removeprefix("*.").rstrip(".").lower()
    return any(bare.endswith("." + zone) for zone in OWN_ZONES)


def validation_record(name: str) -> dict[str, str]:
    """The CNAME ACM asks for to prove control of `name` (stable per name)."""
    bare = name.removeprefix("*.").rstrip(".").lower()
    digest = hashlib.sha256(bare.encode()).hexdigest()
    return {"Name": f"_{digest[:32]}.{bare}.", "Type": "CNAME",
            "Value": f"_{digest[32:]}.acm-validations.aws."}
