"""The hosts controller: a host that stopped heartbeating becomes `lost`: no new
placements on it, its instances report an impaired system status (DescribeInstanceStatus)
and Auto Scaling replaces its groups' instances elsewhere. Instances not in a group stay
as they are (a network cut is not a dead host) until the host comes back, when the
instance controller reconciles it with the store. A draining host's stopped instances
move to other hosts of their zone, one a pass (hosts/drain.py). The control host's own
heartbeat is the leader being alive."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.controllers.loop import ResyncLoop
from gureum.errors import HostError
from gureum.hosts import drain, registry
from gureum.store.host_models import Host

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.hosts")


class HostsController(ResyncLoop):
    name = "hosts-controller"
    resync_seconds = 2.0  # lost within LOST_AFTER_SECONDS + 2 s

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self._lost: set[str] = set()

    def sync(self) -> None:
        registry.mark_lost(self.cloud.store)
        with self.cloud.store.read() as s:
            states = dict(s.execute(select(Host.host_id, Host.state)).all())
        lost = {h for h, state in states.items() if state == "lost"} - self._lost
        back = {h for h in self._lost if states.get(h) not in (None, "lost")}
        self._lost = (self._lost | lost) - back - (self._lost - set(states))
        if lost or back:
            self.cloud.agents.forget()
            self.cloud.hosts_changed(back)
        if "draining" in states.values():
            try:
                drain.move_one_stopped(self.cloud)
            except HostError as err:  # e.g. the target went away: the next pass tries again
                log.warning("drain: moving a stopped instance failed: %s", err)
