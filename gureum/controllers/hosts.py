"""The hosts controller: a host that stopped heartbeating becomes `lost` (no new
placements on it; its instances stay as they are: a network cut is not a dead host),
and the control host's own heartbeat is the leader being alive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gureum.controllers.loop import ResyncLoop
from gureum.hosts import registry

if TYPE_CHECKING:
    from gureum.cloud import Cloud


class HostsController(ResyncLoop):
    name = "hosts-controller"
    resync_seconds = 5.0

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud

    def sync(self) -> None:
        if registry.mark_lost(self.cloud.store):
            self.cloud.agents.forget()
