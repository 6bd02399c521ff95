"""The load balancer controller: keeps every load balancer's data plane equal to the
store (interface, firewall, proxy configuration), removes those the store no longer has,
restarts a proxy that died, writes back what the proxies' health checks observe, and
lets deregistered targets go once their draining delay has passed.

Runs every second while load balancers exist (health must reach DescribeTargetHealth
within a check interval), and at once when a commit touches what they are made of.
While a target waits for its first verdict (new targets are checked every 500 ms), the
health alone is read four times a second in between: an instance refresh or a deploy
moves on as soon as they pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from gureum.agent import wire
from gureum.controllers.loop import ResyncLoop
from gureum.errors import AgentUnavailable
from gureum.services.ec2 import security_groups as sg
from gureum.services.elbv2 import dataplane
from gureum.store.elbv2_models import Listener, LoadBalancer, Target
from gureum.store.models import Vpc, utcnow

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.lb")


CALM_SECONDS = 1.0
WATCHING_SECONDS = 0.25  # while a target's health is still `initial`


class LoadBalancerController(ResyncLoop):
    name = "load-balancer-controller"
    resync_seconds = CALM_SECONDS

    def __init__(self, cloud: Cloud) -> None:
        super().__init__()
        self.cloud = cloud
        self.applied: dict[str, str] = {}  # lb id -> digest of the spec last applied
        self.published: dict[str, list] | None = None  # ports last published on the host
        self.full_pass_at = 0.0  # monotonic time of the last whole pass

    def sync(self) -> None:
        if (not self.woken and self.resync_seconds == WATCHING_SECONDS
                and time.monotonic() - self.full_pass_at < CALM_SECONDS):
            self._watch_health()
            return
        self.full_pass_at = time.monotonic()
        agent = self.cloud.agent
        assert agent is not None
        now = utcnow()
        expired = (Target.draining_until.is_not(None), Target.draining_until <= now)
        with self.cloud.store.read() as s:
            drained = s.scalar(select(Target.target_id).where(*expired).limit(1))
        if drained is not None:  # targets whose draining ended leave first
            with self.cloud.store.write() as s:
                s.execute(delete(Target).where(*expired))
        if self.cloud.config.publish_address:
            self._publish()
        with self.cloud.store.read() as s:
            rows = list(s.scalars(select(LoadBalancer)))
            if not rows and not self.applied:
                present = agent.load_balancers()
                for lb_id in present:
                    agent.remove_load_balancer(lb_id)
                return
            firewalls = sg.firewalls(s)
            states = {lb.lb_id: lb.state for lb in rows}
            specs = {}
            for lb in rows:  # one broken load balancer never stalls the others
                try:
                    specs[lb.lb_id] = (lb.arn, dataplane.spec_for(
                        s, lb, firewalls.get(f"lb-{lb.lb_id}"), now))
                except Exception:
                    log.exception("load balancer %s: no data plane spec", lb.lb_id)
        present = agent.load_balancers()
        for lb_id, (arn, spec) in specs.items():
            digest = hashlib.sha256(repr(wire.encode(spec)).encode()).hexdigest()
            if self.applied.get(lb_id) == digest and present.get(lb_id):
                continue
            if lb_id in present and not present[lb_id]:
                log.warning("load balancer %s: its proxy was not running; restarting", lb_id)
            try:
                agent.ensure_load_balancer(spec)
            except AgentUnavailable:
                raise
            except Exception as err:
                log.exception("load balancer %s not applied", lb_id)
                # One that served before still serves its last configuration: impaired.
                state = "active_impaired" if states.get(lb_id) in (
                    "active", "active_impaired") else "provisioning"
                self._set_state(arn, state, f"{type(err).__name__}: {err}"[:1000])
                continue
            self.applied[lb_id] = digest
            self._set_state(arn, "active", None)
        for lb_id in set(present) - {lb.lb_id for lb in rows}:
            agent.remove_load_balancer(lb_id)
            self.applied.pop(lb_id, None)
        for lb_id in specs:
            agent.refresh_load_balancer(lb_id)
        self._watch_health()

    def _watch_health(self) -> None:
        """Record the proxies' checks; watch closely while a target waits for a verdict."""
        waiting = self._record_health(list(self.applied))
        self.resync_seconds = WATCHING_SECONDS if waiting else CALM_SECONDS

    def _publish(self) -> None:
        """Listeners of internet-facing load balancers on the host's own address."""
        with self.cloud.store.read() as s:
            wanted = {str(lst.port): [lb.private_ip, lst.port, vpc.net_index]
                      for lst, lb, vpc in s.execute(
                          select(Listener, LoadBalancer, Vpc)
                          .join(LoadBalancer, Listener.load_balancer_arn == LoadBalancer.arn)
                          .join(Vpc, Vpc.vpc_id == LoadBalancer.vpc_id)
                          .where(LoadBalancer.scheme == "internet-facing")).all()}
        if wanted != self.published:
            self.cloud.agent.publish_ports(wanted)  # type: ignore[union-attr]
            self.published = wanted

    def _set_state(self, arn: str, state: str, reason: str | None) -> None:
        with self.cloud.store.write() as s:
            lb = s.get(LoadBalancer, arn)
            if lb is not None and (lb.state, lb.state_reason) != (state, reason):
                lb.state, lb.state_reason = state, reason

    def _record_health(self, lb_ids: list[str]) -> bool:
        """What each proxy's checks say, onto the targets (only what changed). True when a
        target behind a proxy still waits for its first verdict."""
        agent = self.cloud.agent
        assert agent is not None
        observed: dict[tuple[str, str], tuple[str, str]] = {}
        for lb_id in lb_ids:
            for backend, servers in agent.target_health(lb_id).items():
                for server, (state, check) in servers.items():
                    observed[(backend, server)] = (state, check)
        if not observed:
            return False
        with self.cloud.store.read() as s:
            targets = list(s.scalars(select(Target)))
            changed = []
            waiting = False
            for target in targets:
                key = (dataplane.backend_name(target.target_group_arn),
                       dataplane.server_name(target))
                seen = observed.get(key)
                if seen is None:
                    continue
                health = dataplane.health_of(*seen, previous=target.health)
                waiting = waiting or health[0] == "initial"
                if health != (target.health, target.health_reason):
                    changed.append((target.target_group_arn, target.target_id, target.port,
                                    health))
        if not changed:
            return waiting
        with self.cloud.store.write() as s:
            for tg_arn, target_id, port, (state, reason) in changed:
                row = s.get(Target, (tg_arn, target_id, port))
                if row is not None:
                    row.health, row.health_reason = state, reason
        return waiting
