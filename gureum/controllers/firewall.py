"""The firewall controller: keeps every running instance's security-group rules (in its
own netns) equal to what the store says, woken by any change that could alter them:
rules, group membership, launches and terminations. Also re-checks every few seconds."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent.firewall import render
from gureum.controllers.loop import ResyncLoop
from gureum.services.ec2 import security_groups as sg
from gureum.store import models

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.firewall")
RESYNC_SECONDS = 5.0


class FirewallController(ResyncLoop):
    name = "firewall-controller"
    resync_seconds = RESYNC_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.applied: dict[str, str] = {}

    def sync(self) -> None:
        with self.cloud.store.read() as s:
            wanted = sg.firewalls(s)
            # Each instance's firewall is written by the agent of the host it runs on.
            placed = dict(s.execute(select(models.Instance.instance_id,
                                           models.Instance.host_id).where(
                models.Instance.state == "running")).all())
            running = set(placed)
        for instance_id in list(self.applied):
            if instance_id not in running:
                del self.applied[instance_id]
        for instance_id in running:
            firewall = wanted.get(instance_id)
            if firewall is None:
                continue
            digest = hashlib.sha256(render(firewall).encode()).hexdigest()
            if self.applied.get(instance_id) == digest:
                continue
            try:
                self.cloud.agent_for(placed[instance_id]).apply_firewall(instance_id, firewall)
                self.applied[instance_id] = digest
            except Exception as err:  # a stopping instance loses its netns mid-way
                log.warning("firewall of %s not applied: %s", instance_id, err)
