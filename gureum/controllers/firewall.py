"""The firewall controller: keeps every running instance's security-group rules (in its
own netns) equal to what the store says, woken by any change that could alter them:
rules, group membership, launches and terminations. Also re-checks every few seconds.
It keeps the instance's network interfaces too (attached ones as ethN, secondary
addresses), before their rules, since both change with network_interfaces rows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from gureum.agent.contract import InstanceSpec
from gureum.agent.firewall import Firewall
from gureum.controllers.loop import BURST_SECONDS, ResyncLoop
from gureum.services.ec2 import interfaces
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
        # instance -> the firewall last applied (compared as values: cheaper than
        # rendering each of them on every pass)
        self.applied: dict[str, Firewall] = {}
        self.wired: dict[str, tuple] = {}  # instance -> the interfaces last synced

    def applied_by_launch(self, spec: InstanceSpec) -> None:
        """A launch made these interfaces and wrote this firewall before the instance's
        first packet: the next pass need not make or write the same again."""
        self.wired[spec.instance_id] = (spec.secondary_ips, spec.interfaces,
                                         spec.source_dest_check, spec.ipv6_addresses)
        if spec.firewall is not None:
            self.applied[spec.instance_id] = spec.firewall

    def sync(self) -> None:
        with self.cloud.store.read() as s:
            wanted = sg.firewalls(s)
            # Each instance's firewall is written by the agent of the host it runs on.
            rows = s.execute(select(models.Instance.instance_id, models.Instance.state,
                                    models.Instance.host_id).where(
                models.Instance.state.in_(("pending", "running")))).all()
            states = {instance_id: state for instance_id, state, _ in rows}
            # A lost host's instances wait for it (calling it would only time out).
            placed = {instance_id: host for instance_id, state, host in rows
                      if state == "running" and not self.cloud.agents.lost(host)}
            running = set(placed)
            wanted_interfaces = interfaces.host_interfaces(s, sorted(running))
        for instance_id in list(self.applied):
            if instance_id not in states:  # kept while pending: its launch wrote it
                del self.applied[instance_id]
        for instance_id in list(self.wired):
            if instance_id not in states:
                del self.wired[instance_id]
        for instance_id in running:
            self._wire(instance_id, wanted_interfaces[instance_id], wanted)
        changed: dict[str, dict[str, Firewall]] = {}  # host -> instance -> firewall
        for instance_id in running:
            firewall = wanted.get(instance_id)
            if firewall is not None and self.applied.get(instance_id) != firewall:
                changed.setdefault(placed[instance_id], {})[instance_id] = firewall
        for host, firewalls in changed.items():  # one call per host: a group's members change together
            try:
                failed = self.cloud.agent_for(host).apply_firewalls(firewalls)
            except Exception as err:
                log.warning("firewalls on host %s not applied: %s", host, err)
                continue
            for instance_id, firewall in firewalls.items():
                if instance_id in failed:  # a stopping instance loses its netns mid-way
                    log.warning("firewall of %s not applied: %s", instance_id, failed[instance_id])
                else:
                    self.applied[instance_id] = firewall

    def _wire(self, instance_id: str, wanted: tuple, firewalls: dict) -> None:
        """The instance's interfaces as the store says, when that changed since the last
        sync (a launch makes them itself: the sync after it finds nothing to do)."""
        if self.wired.get(instance_id) == wanted:
            return
        controller = self.cloud.controller
        with self.cloud.store.read() as s:
            inst = s.get(models.Instance, instance_id)
        if inst is None or inst.state != "running" or controller is None:
            return
        try:
            spec = controller.spec(inst, firewalls)  # this pass's firewalls: computed once
            self.cloud.agent_for(inst.host_id).sync_interfaces(spec)
            self.wired[instance_id] = wanted
        except Exception as err:  # a stopping instance loses its netns mid-way
            log.warning("interfaces of %s not synced: %s", instance_id, err)
