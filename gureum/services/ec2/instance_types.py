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

    @property
    def limits(self) -> Limits:
        return Limits(vcpus=self.vcpus, memory_mib=self.memory_mib,
                      pids=max(1024, self.memory_mib))


CATALOGUE: dict[str, InstanceType] = {t.name: t for t in [
    InstanceType("t2.micro", 1, 1024, True),
    InstanceType("t3.nano", 2, 512, True),
    InstanceType("t3.micro", 2, 1024, True),
    InstanceType("t3.small", 2, 2048, True),
    InstanceType("t3.medium", 2, 4096, True),
    InstanceType("t3.large", 2, 8192, True),
    InstanceType("m5.large", 2, 8192, False),
    InstanceType("c5.large", 2, 4096, False),
]}
DEFAULT = "t3.micro"
