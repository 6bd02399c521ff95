"""The firewall controller: keeps every running instance's security-group rules (in its
own netns) equal to what the store says, woken by any change that could alter them:
rules, group membership, launches and terminations. Also re-checks every few seconds."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent.firewall import Firewall, render
from gureum.controllers.loop import BURST_SECONDS, ResyncLoop
from gureum.services.ec2 import security_groups as sg
from gureum.store import models

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.firewall")
RESYNC_SECONDS = 5.0


class FirewallController(ResyncLoop):
    name = "firewall-controller"
    resync_seconds = RESYNC_SECONDS
    min_interval = BURST_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.applied: dict[str, str] = {}

    def applied_by_launch(self, instance_id: str, firewall: Firewall) -> None:
        """A launch wrote this firewall before the instance's first packet: the next pass
        need not write the same again."""
        self.applied[instance_id] = hashlib.sha256(render(firewall).encode()).hexdigest()

    def sync(self) -> None:
        agent = self.cloud.agent
        assert agent is not None
        with self.cloud.store.read() as s:
            wanted = sg.firewalls(s)
            states = {instance_id: state for instance_id, state in s.execute(
                select(models.Instance.instance_id, models.Instance.state).where(
                    models.Instance.state.in_(("pending", "running"))))}
        running = {i for i, state in states.items() if state == "running"}
        for instance_id in list(self.applied):
            if instance_id not in states:  # kept while pending: its launch wrote it
                del self.applied[instance_id]
        for instance_id in running:
            firewall = wanted.get(instance_id)
            if firewall is None:
                continue
            digest = hashlib.sha256(render(firewall).encode()).hexdigest()
            if self.applied.get(instance_id) == digest:
                continue
            try:
                agent.apply_firewall(instance_id, firewall)
                self.applied[instance_id] = digest
            except Exception as err:  # a stopping instance loses its netns mid-way
                log.warning("firewall of %s not applied: %s", instance_id, err)
