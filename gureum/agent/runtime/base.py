"""The runtime driver contract (after Nova's virt driver): every call is idempotent.

`destroy` of something absent succeeds; `create` of something present is an error the
caller avoids by asking `state` first. The agent composes these with storage and network
steps inside an exit stack.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gureum.agent.contract import Limits, RuntimeState
from gureum.agent.runtime.blkio import DiskThrottle


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    bundle: Path
    rootfs: Path
    hostname: str
    netns_path: Path
    uid_base: int
    limits: Limits
    cgroup_path: str
    console_log: Path
    boot_dir: Path
    seed_dir: Path | None = None
    # Bound at /mnt as a slave: what the host mounts below it later appears inside.
    shared_mnt: Path | None = None
    # "tini": tini runs boot_dir/boot in a netns the host made (netns_path).
    # "systemd": systemd is PID 1, in a netns runc makes (netns_path is not used).
    init_system: str = "tini"
    cpus: str | None = None  # cpuset.cpus ("1", "0,1"); None: every core
    disks: tuple[DiskThrottle, ...] = ()  # blkio limits of its loop devices
    # The instance's directory: runc starts where, below its parent, only this
    # directory's mounts are (agent/mountns.py). None: in the host's mount namespace.
    mounts_of: Path | None = None


class RuntimeDriver(ABC):
    @abstractmethod
    def state(self, name: str) -> RuntimeState: ...

    @abstractmethod
    def start(self, spec: ContainerSpec,
              before_start: Callable[[int], None] | None = None) -> int:
        """Create and start the container; returns the host PID of its init.
        `before_start(pid)` runs between create and start, while init waits."""

    @abstractmethod
    def stop(self, name: str, timeout: float, signal: str = "TERM") -> None:
        """Ask init to exit (`signal`), kill after `timeout`, then delete. Idempotent."""

    @abstractmethod
    def destroy(self, name: str) -> None:
        """Kill and delete at once. Idempotent."""

    @abstractmethod
    def init_pid(self, name: str) -> int | None:
        """Host PID of the container's init, or None."""

    @abstractmethod
    def alive(self, name: str) -> bool:
        """Cheap liveness check, called often."""

    @abstractmethod
    def list(self) -> list[str]: ...

    @abstractmethod
    def states(self) -> dict[str, RuntimeState]:
        """Every container of ours and its state, in one call."""
