"""The instance driver contract: the part of a host agent that depends on what an
instance *is* (a container sharing the host kernel today, a microVM later).

The agent keeps the plumbing every kind shares: the VPC router, the instance's netns and
its cable, public addresses, the firewall and the metadata seed. The driver owns the rest:
the instance's disk and root filesystem with its first-boot files, the process that runs
it, and how to tell that it is alive and ready.

Every call is idempotent (after Nova's virt driver): `halt` of a halted instance and
`erase` of an absent one succeed. Steps that build something register their undo on the
caller's exit stack, so a failed launch unwinds whole.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from gureum.agent.contract import GuestDns, InstanceSpec, IoLimits, RuntimeState
from gureum.agent.volume_store import VolumeStore
from gureum.config import Config


class InstanceDriver(ABC):
    kind: str = ""

    def __init__(self, config: Config, store: VolumeStore) -> None:
        self.config = config
        self.store = store  # where root disks and data volumes live

    def instance_dir(self, instance_id: str) -> Path:
        """Where everything of an instance lives on the host (made by the agent)."""
        return self.config.instances_dir / instance_id

    def console_log(self, instance_id: str) -> Path:
        return self.instance_dir(instance_id) / "console.log"

    # -- storage and first boot ----------------------------------------------------------
    @abstractmethod
    def prepare(self, spec: InstanceSpec, undo: ExitStack) -> None:
        """The instance's disk and root filesystem, ready to boot; first-boot files (host
        keys, the launch key, hostname) written once, on the first launch only."""

    @abstractmethod
    def seed_owner(self, spec: InstanceSpec) -> int:
        """The host uid that must own the metadata seed for the instance's root to read it."""

    @abstractmethod
    def release(self, instance_id: str) -> None:
        """Detach the disk (kept) and everything else the stopped instance held."""

    @abstractmethod
    def erase(self, instance_id: str) -> None:
        """The disk and every file of the instance go."""

    @abstractmethod
    def adopt_disk(self, disk: Path, slot: int) -> None:
        """A root disk moved here from another host becomes this host's instance's of
        `slot` (a container's files belong to its uid range on the host; a microVM's
        disk has nothing host-specific and needs nothing)."""

    # -- data volumes -------------------------------------------------------------------
    @abstractmethod
    def attach_volume(self, instance_id: str, slot: int, volume_id: str, device: str,
                      io: IoLimits | None = None) -> None:
        """The volume's data reachable inside the instance (idempotent)."""

    @abstractmethod
    def detach_volume(self, instance_id: str, volume_id: str, device: str, force: bool) -> None:
        """Flushed and gone from the instance (idempotent)."""

    # -- the running instance ------------------------------------------------------------
    @abstractmethod
    def spawn(self, spec: InstanceSpec, netns: Path, seed: Path, undo: ExitStack,
              wire: Callable[[int], None] | None = None) -> None:
        """Boot the prepared instance with its network in `netns`. With `wire`, the
        instance makes its own netns (systemd's image: its user namespace must own it),
        and `wire(pid)` names and wires it at `netns` before the instance's init runs."""

    @abstractmethod
    def halt(self, instance_id: str, timeout: float) -> None:
        """Ask the instance to shut down, force it after `timeout` seconds (0: at once),
        and remove its runtime object."""

    def halt_reason(self, instance_id: str) -> str:
        """After the instance's init ended by itself: what its guest asked for ("reboot",
        "poweroff", "halt"), or "" when it did not say."""
        return ""

    @abstractmethod
    def configure_dns(self, instance_id: str, slot: int, dns: GuestDns) -> None:
        """A running instance's resolver settings become `dns` (its /etc/resolv.conf)."""

    @abstractmethod
    def state(self, instance_id: str) -> RuntimeState: ...

    @abstractmethod
    def states(self) -> dict[str, RuntimeState]:
        """Every instance with a runtime object on this host."""

    @abstractmethod
    def alive(self, instance_id: str) -> bool:
        """Cheap liveness, called often (no subprocess)."""

    @abstractmethod
    def ready(self, instance_id: str) -> bool:
        """Something listens on TCP 22 inside the instance, read without sending a packet
        (security groups may close port 22; a probe would litter the console)."""

    @abstractmethod
    def counters(self, instance_id: str) -> list[float] | None:
        """[CPU seconds, bytes in, bytes out, packets in, packets out] so far, or None."""

    def close(self) -> None:
        """Background work of the driver stops (the host has no instance left)."""
        return None

    def host_objects(self) -> dict[str, list[str]]:
        """Kinds of host objects the driver makes beyond the shared ones."""
        return {}
