"""Instance drivers: how one kind of instance runs on a host (see base.py)."""

from __future__ import annotations

from gureum.agent.drivers.base import InstanceDriver
from gureum.agent.volume_store import VolumeStore
from gureum.config import Config


def known_drivers() -> dict[str, type[InstanceDriver]]:
    from gureum.agent.drivers.container import ContainerDriver

    return {"container": ContainerDriver}


def driver_for(config: Config, store: VolumeStore) -> InstanceDriver:
    """The driver the operator chose (`GUREUM_INSTANCE_DRIVER`, default `container`)."""
    drivers = known_drivers()
    try:
        return drivers[config.instance_driver](config, store)
    except KeyError:
        raise ValueError(f"unknown instance driver {config.instance_driver!r}; "
                         f"known: {', '.join(drivers)}") from None
