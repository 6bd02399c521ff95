"""How an instance's vCPUs map onto the host's cores.

Measured here (2 cores, a 1-vCPU t2.micro next door running two spinners, the noisy
test): a CFS quota of 1 CPU alone lets the two spinners take both cores for half of each
100 ms period, and a neighbour's HTTP p99 went from ~2.5 to ~10 ms; cpu.shares (even at
the minimum, 2) changed nothing. Pinning the small instance to as many cores as it has
vCPUs kept the other core free: p99 ~7 ms with every kind of noise at once, against
~18 ms. So an instance smaller than the host gets a cpuset of `vcpus` cores, spread by
slot so that small neighbours land on different cores, plus shares in proportion to its
vCPUs (fairness where instances do share a core).
"""

from __future__ import annotations

import os

SHARES_PER_VCPU = 1024  # the kernel's default weight is one vCPU's
MAX_SHARES = 262144  # the kernel's ceiling


def shares(vcpus: int) -> int:
    return min(MAX_SHARES, SHARES_PER_VCPU * max(1, vcpus))


def host_cpus() -> list[int]:
    """The cores this process may run on (and so its instances)."""
    return sorted(os.sched_getaffinity(0))


def cpuset(vcpus: int, slot: int, cpus: list[int]) -> str | None:
    """The cores of an instance with `vcpus` in `slot`, as cpuset.cpus writes them; None
    (every core) when the instance is at least as large as the host."""
    if not cpus or vcpus >= len(cpus):
        return None
    start = (slot * vcpus) % len(cpus)
    picked = sorted(cpus[(start + i) % len(cpus)] for i in range(vcpus))
    return ",".join(str(c) for c in picked)
