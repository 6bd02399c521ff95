"""The instance type catalogue. What DescribeInstanceTypes reports is exactly what the
agent enforces through cgroups: vCPUs as a CPU quota, memory as a hard limit."""

from __future__ import annotations

from dataclasses import dataclass

from gureum.agent.runtime.base import Limits


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    burstable: bool
    # AWS's interface limits: network interfaces, IPv4 addresses on each.
    max_interfaces: int = 2
    addresses_per_interface: int = 2

    @property
    def limits(self) -> Limits:
        return Limits(vcpus=self.vcpus, memory_mib=self.memory_mib,
                      pids=max(1024, self.memory_mib))


# AWS's sizes per family: (size, vCPUs, memory GiB). Burstable families first.
_BURSTABLE_T2 = (("nano", 1, 0.5), ("micro", 1, 1), ("small", 1, 2), ("medium", 2, 4),
                 ("large", 2, 8), ("xlarge", 4, 16), ("2xlarge", 8, 32))
_BURSTABLE_T3 = (("nano", 2, 0.5), ("micro", 2, 1), ("small", 2, 2), ("medium", 2, 4),
                 ("large", 2, 8), ("xlarge", 4, 16), ("2xlarge", 8, 32))
_GENERAL = (("large", 2, 8), ("xlarge", 4, 16), ("2xlarge", 8, 32), ("4xlarge", 16, 64))
_COMPUTE = (("large", 2, 4), ("xlarge", 4, 8), ("2xlarge", 8, 16), ("4xlarge", 16, 32))
_MEMORY = (("large", 2, 16), ("xlarge", 4, 32), ("2xlarge", 8, 64), ("4xlarge", 16, 128))
FAMILIES = {"t2": _BURSTABLE_T2, "t3": _BURSTABLE_T3, "t3a": _BURSTABLE_T3,
            **{f: _GENERAL for f in ("m5", "m6i", "m7i")},
            **{f: _COMPUTE for f in ("c5", "c6i", "c7i")},
            **{f: _MEMORY for f in ("r5", "r6i", "r7i")}}

# (interfaces, IPv4 addresses per interface) by size, as AWS lists them for these families.
_INTERFACES = {"nano": (2, 2), "micro": (2, 2), "small": (3, 4), "medium": (3, 6),
               "large": (3, 12), "xlarge": (4, 15), "2xlarge": (4, 15), "4xlarge": (8, 30)}
_INTERFACES_T2 = {**_INTERFACES, "xlarge": (3, 15), "2xlarge": (3, 15)}
_INTERFACES_NITRO = {**_INTERFACES, "large": (3, 10)}


def _interfaces(family: str, size: str) -> tuple[int, int]:
    table = _INTERFACES_T2 if family == "t2" else _INTERFACES if family.startswith("t") \
        else _INTERFACES_NITRO
    return table[size]


CATALOGUE: dict[str, InstanceType] = {
    f"{family}.{size}": InstanceType(f"{family}.{size}", vcpus, int(gib * 1024),
                                     family.startswith("t"), *_interfaces(family, size))
    for family, sizes in FAMILIES.items() for size, vcpus, gib in sizes}
DEFAULT = "t3.micro"


def fits(t: InstanceType, host_vcpus: int, host_memory_mib: int, cpu_overcommit: float,
         memory_overcommit: float) -> bool:
    """Whether one instance of this type can run on the host at all: its vCPUs within the
    host's cores times the CPU overcommit, its memory limit within the host's memory
    times the memory overcommit (limits are caps, not reservations)."""
    return t.vcpus <= host_vcpus * cpu_overcommit and \
        t.memory_mib <= host_memory_mib * memory_overcommit
