"""The instance controller: a level-triggered reconcile loop.

Each tick compares what the API promised (state, desired_state, reboot requests) with
what the host has, and hands each instance needing work to a worker pool; one instance
per worker at a time, so a slow or failing instance never stalls the others. After a
crash the same loop converges: every agent operation is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select

from gureum.agent.agent import wait_until
from gureum.agent.contract import AgentContract, InstanceSpec, RuntimeState, VolumeAttachment
from gureum.agent.firewall import Firewall
from gureum.agent.network import VpcNetwork
from gureum.controllers.boot_watch import BootWatch
from gureum.controllers.loop import ResyncLoop
from gureum.crashpoints import crashpoint
from gureum.errors import AgentUnavailable
from gureum.services.ec2 import allocation, interfaces, networks, volume_io, volumes
from gureum.services.ec2 import dhcp_options as dhcp
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.store import models
from gureum.store.db import bulk_delete
from gureum.store.ebs_models import Volume
from gureum.store.models import utcnow

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.controller")
Topology = dict[str, tuple[VpcNetwork, set[str]]]  # VPC id -> (host network, public subnets)
MAX_LAUNCH_ATTEMPTS = 3
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0  # seconds: 1, 2, 4, ... 60
SSH_READY_TIMEOUT = 60.0
HEALTH_INTERVAL = 2.0
GC_INTERVAL = 30.0


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failure in a row."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


class InstanceController(ResyncLoop):
    name = "instance-controller"
    resync_seconds = 1.0

    def __init__(self, cloud: Cloud, workers: int = 8) -> None:
        super().__init__(cloud.wakeup)
        self.cloud = cloud
        self.agent = cloud.agent
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="reconcile")
        # Launched instances until sshd answers: watched by one thread, not a worker each.
        self.boots = BootWatch()
        self.inflight: set[str] = set()
        self.lock = threading.Lock()
        self._last_health = 0.0
        self._last_gc = 0.0
        self._recovered = False
        # (host, instance) seen on a host that no row placed there owned at the last pass.
        self._orphans: set[tuple[str, str]] = set()
        self._back: set[str] = set()  # hosts back from `lost`, to reconcile on the next pass
        self.health_interval, self.gc_interval = HEALTH_INTERVAL, GC_INTERVAL
        # Host work that maps a public address (launch, reboot, repair), counted as it
        # begins: the network controller does not unmap by a store read that one began
        # during (NetworkController.sync_public_ips).
        self.mappings_begun = 0
        self._mappings_lock = threading.Lock()

    def mapping(self) -> None:
        """Host work that may map a public address begins now."""
        with self._mappings_lock:
            self.mappings_begun += 1

    def start(self) -> None:
        self.recover()
        self.boots.start()
        super().start()

    def stop(self) -> None:
        super().stop()
        self.boots.stop()
        self.pool.shutdown(wait=True)

    # -- the loop ----------------------------------------------------------------------
    def sync(self) -> None:
        self.tick()

    def tick(self) -> None:
        now = utcnow()
        with self.cloud.store.read() as s:
            rows = list(s.scalars(select(models.Instance).where(or_(
                models.Instance.state.in_(("pending", "stopping", "shutting-down")),
                models.Instance.reboot_requested > models.Instance.reboot_done), or_(
                models.Instance.next_attempt_at.is_(None),
                models.Instance.next_attempt_at <= now))))
        self._drop_unwanted_boots()
        for inst in rows:
            self._submit(inst.instance_id)
        with self.lock:
            back, self._back = self._back, set()
        for host_id in sorted(back):
            self._reconcile_returned(host_id)
        mono = time.monotonic()
        if mono - self._last_health > self.health_interval:
            self._last_health = mono
            self._health_check()
        if mono - self._last_gc > self.gc_interval:
            self._last_gc = mono
            self._collect_terminated()
            self._sync_power_states()

    def _submit(self, instance_id: str) -> None:
        with self.lock:
            if instance_id in self.inflight or self.stopping.is_set():
                return
            self.inflight.add(instance_id)
        self.pool.submit(self._work, instance_id)

    def _work(self, instance_id: str) -> None:
        booting = False
        try:
            booting = self.reconcile(instance_id)
        except Exception as err:
            self._record_failure(instance_id, err)
        finally:
            if not booting:  # else the boot watcher's callback releases it
                self._release(instance_id)

    def _release(self, instance_id: str) -> None:
        with self.lock:
            self.inflight.discard(instance_id)

    def _drop_unwanted_boots(self) -> None:
        """A booting instance terminated or stopped meanwhile: stop waiting for its sshd,
        so this pass hands it to a worker for what is asked now."""
        watched = self.boots.watching()
        if not watched:
            return
        with self.cloud.store.read() as s:
            pending = set(s.scalars(select(models.Instance.instance_id).where(
                models.Instance.instance_id.in_(watched), models.Instance.state == "pending")))
        for instance_id in watched - pending:
            if self.boots.cancel(instance_id):
                self._release(instance_id)

    # -- one instance ------------------------------------------------------------------
    def firewalls(self) -> dict[str, Firewall]:
        with self.cloud.store.read() as s:
            return sg.firewalls(s)

    def topology(self, vpc_ids: set[str]) -> Topology:
        """Each VPC's host network and public subnets, for building many specs at once."""
        out: Topology = {}
        with self.cloud.store.read() as s:
            for vpc_id in vpc_ids:
                vpc = s.get(models.Vpc, vpc_id)
                assert vpc is not None, vpc_id
                public = networks.public_subnet_ids(s, vpc_id)
                out[vpc_id] = (networks.vpc_network(s, vpc, public), public)
        return out

    def spec(self, inst: models.Instance, firewalls: dict[str, Firewall] | None = None,
             topology: Topology | None = None) -> InstanceSpec:
        """What the agent needs; pass `firewalls` and `topology` when building many specs."""
        if firewalls is None:
            with self.cloud.store.read() as s:
                firewalls = sg.firewalls(s, only={inst.instance_id})
        if topology is None or inst.vpc_id not in topology:
            topology = self.topology({inst.vpc_id})
        network, public = topology[inst.vpc_id]
        with self.cloud.store.read() as s:
            image = s.get(models.Image, inst.image_id)
            subnet = s.get(models.Subnet, inst.subnet_id)
            assert image is not None and subnet is not None
            disks = volumes.of_instances(s, [inst.instance_id])[inst.instance_id]
            vpc = s.get(models.Vpc, inst.vpc_id)
            assert vpc is not None
            dns = dhcp.guest_dns_by_vpc(s, [vpc], self.cloud.config.region)[vpc.vpc_id]
            secondary_ips, attached, source_dest_check, ipv6_addresses = interfaces.host_interfaces(
                s, [inst.instance_id])[inst.instance_id]
        firewall = firewalls.get(inst.instance_id)
        root = next((v for v in disks if v.is_root), None)
        scale = self.cloud.config.ebs_io_scale
        return InstanceSpec(
            instance_id=inst.instance_id, slot=inst.slot, vpc=network, subnet_cidr=subnet.cidr,
            private_ip=inst.private_ip,
            # Public addresses reach only subnets routed to an attached internet gateway.
            public_ip=inst.public_ip if subnet.subnet_id in public else None,
            hostname=f"ip-{inst.private_ip.replace('.', '-')}",
            limits=CATALOGUE[inst.instance_type].limits, volume_gib=inst.volume_gib,
            image_root=Path(image.rootfs),
            authorized_key=inst.authorized_key, user_data=inst.user_data, firewall=firewall,
            root_volume_id=root.volume_id if root else None,
            volumes=tuple(VolumeAttachment(v.volume_id, v.device or "",
                                           volume_io.of_volume(v, scale)) for v in disks
                          if not v.is_root and v.attach_state in ("attaching", "attached")
                          and v.state != "creating"),
            root_io=volume_io.of_volume(root, scale) if root else None,
            init_system=image.init_system, dns=dns,
            secondary_ips=secondary_ips, interfaces=attached,
            source_dest_check=source_dest_check,
            ipv6_addresses=ipv6_addresses, subnet_ipv6_cidr=subnet.ipv6_cidr or "",
        )

    def agent_of(self, inst: models.Instance) -> AgentContract:
        """The agent of the host the instance was placed on (hosts/agents.py)."""
        return self.cloud.agent_for(inst.host_id)

    def reconcile(self, instance_id: str) -> bool:
        """One step toward what the store asks; True if the instance was launched and its
        boot is now watched (it stays in flight until sshd answers)."""
        with self.cloud.store.read() as s:
            inst = s.get(models.Instance, instance_id)
        if inst is None:
            return False
        if self.cloud.agents.lost(inst.host_id) and inst.state in ("stopping", "shutting-down"):
            # Its host is gone: the store says what the user asked; whatever still runs
            # there is stopped or swept when the host comes back (_reconcile_returned).
            new_state = "stopped" if inst.state == "stopping" else "terminated"
            log.warning("%s: host %s is lost; %s in the store, its runtime is reconciled "
                        "when the host returns", instance_id, inst.host_id, new_state)
            self._finish(instance_id, inst.state, new_state, release_public_ip=True)
            return False
        agent = self.agent_of(inst)
        if inst.state == "pending":
            return self._launch(inst)
        if inst.state == "stopping":
            agent.stop(self.spec(inst), inst.force_stop)
            crashpoint("controller.stopped_before_record")
            self._finish(instance_id, "stopping", "stopped", release_public_ip=True)
        elif inst.state == "shutting-down":
            agent.destroy(self.spec(inst))
            crashpoint("controller.destroyed_before_record")
            self._finish(instance_id, "shutting-down", "terminated", release_public_ip=True)
        elif inst.state == "running" and inst.reboot_requested <= inst.reboot_done:
            self._repair(inst)
        elif inst.state == "running":
            wanted = inst.reboot_requested
            spec = self.spec(inst)
            self._ensure_vpc(spec.vpc, inst.host_id)
            self.mapping()
            agent.reboot(spec)
            wait_until(lambda: agent.ssh_ready(spec), SSH_READY_TIMEOUT)
            with self.cloud.store.write() as s:
                row = s.get(models.Instance, instance_id)
                if row is not None:
                    row.reboot_done = max(row.reboot_done, wanted)
        return False

    def _launch(self, inst: models.Instance) -> bool:
        if inst.public_ip is None and inst.assign_public_ip:  # a start after stop: not kept
            with self.cloud.store.write() as s:
                row = s.get(models.Instance, inst.instance_id)
                assert row is not None
                row.public_ip = next(allocation.free_public_ips(s, self.cloud.config.public_pool), None)
                inst = row
        with self.cloud.store.read() as s:
            making = s.scalar(select(Volume.volume_id).where(
                Volume.instance_id == inst.instance_id, Volume.state == "creating").limit(1))
        if making is not None:  # a data volume of its BlockDeviceMappings is being made
            threading.Timer(0.2, self.wakeup.set).start()
            return False
        started = time.monotonic()
        agent = self.agent_of(inst)
        spec = self.spec(inst)
        specced = time.monotonic()
        self._ensure_vpc(spec.vpc, inst.host_id, spec.private_ip)
        networked = time.monotonic()
        self.mapping()
        agent.launch(spec)
        if self.cloud.firewall_controller is not None:
            self.cloud.firewall_controller.applied_by_launch(spec)
        launched = time.monotonic()
        crashpoint("controller.launched_before_ready")
        instance_id = inst.instance_id

        def ready() -> None:
            try:
                log.info("%s ready in %.0f ms (spec %.0f, vpc %.0f, host %.0f, boot %.0f)",
                         instance_id, (time.monotonic() - started) * 1000,
                         (specced - started) * 1000, (networked - specced) * 1000,
                         (launched - networked) * 1000, (time.monotonic() - launched) * 1000)
                with self.cloud.store.write() as s:
                    row = s.get(models.Instance, instance_id)
                    if row is not None and row.state == "pending":
                        row.transition("running")
                        row.reboot_done = row.reboot_requested  # a fresh boot satisfies any reboot
            finally:
                self._release(instance_id)

        def failed(err: Exception) -> None:
            try:
                self._record_failure(instance_id, err)
            finally:
                self._release(instance_id)

        self.boots.watch(instance_id, lambda: agent.ssh_ready(spec), SSH_READY_TIMEOUT,
                         ready, failed)
        return True

    def _ensure_vpc(self, vpc: VpcNetwork, host_id: str | None = None,
                    private_ip: str | None = None) -> None:
        """The VPC's router and its DNS/metadata listeners on the instance's host
        (answering for the instance at `private_ip`), before it boots there."""
        if self.cloud.network_controller is not None:
            self.cloud.network_controller.ensure_vpc(vpc, host_id, private_ip)
        else:
            self.cloud.agent_for(host_id).ensure_vpc(vpc)

    def _finish(self, instance_id: str, expected: str, new_state: str,
                release_public_ip: bool) -> None:
        with self.cloud.store.write() as s:
            row = s.get(models.Instance, instance_id)
            if row is None or row.state != expected:
                return
            row.transition(new_state)
            row.force_stop = False
            elastic = s.scalar(select(models.Address).where(models.Address.instance_id == instance_id))
            if new_state == "terminated":
                volumes.release_on_termination(s, instance_id)
                interfaces.release_on_termination(s, instance_id)
            if new_state == "terminated" and elastic is not None:
                elastic.instance_id, elastic.association_id = None, None  # kept by the account
                elastic = None
            if release_public_ip and elastic is None:
                row.public_ip = None

    def _record_failure(self, instance_id: str, err: Exception) -> None:
        """Count a failed attempt and schedule the next one (exponential backoff, stored
        on the row so a restart keeps it). An unreachable agent is not the instance's
        failure: it is retried soon without counting."""
        if isinstance(err, AgentUnavailable):
            log.info("%s waits for the agent: %s", instance_id, err)
            threading.Timer(1.0, self.wakeup.set).start()
            return
        with self.cloud.store.write() as s:
            row = s.get(models.Instance, instance_id)
            if row is None:
                return
            row.attempts += 1
            attempts, state = row.attempts, row.state
            row.last_error = f"{type(err).__name__}: {err}"[:4000]
            delay = backoff(attempts)
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
            if state == "pending" and attempts >= MAX_LAUNCH_ATTEMPTS:
                # As on EC2: a launch that cannot succeed ends terminated, with the reason.
                row.transition("shutting-down", "terminated")
                volumes.release_on_termination(s, instance_id)
                row.state_reason_code = "Server.InternalError"
                row.state_reason_message = f"Server.InternalError: {str(err)[:400]}"
                delay = 0.0
        if attempts == 1:  # the whole story once; later failures of the same kind briefly
            log.error("%s: %s failed", instance_id, state, exc_info=err)
        else:
            log.warning("%s: %s failed (attempt %d, next in %.0f s): %s", instance_id, state,
                        attempts, delay, err)
        threading.Timer(delay, self.wakeup.set).start()

    # -- periodic ------------------------------------------------------------------------
    def _health_check(self) -> None:
        """Running rows whose init is not alive: if the container is still there its init
        exited (a shutdown from inside: the instance stops, as on EC2); if it vanished
        from the host, the instance is repaired (relaunched on its disk)."""
        if not self._recovered:
            self.recover()
            return
        with self.cloud.store.read() as s:
            rows = list(s.scalars(select(models.Instance).where(models.Instance.state == "running")))
        hosts: dict[str, dict[str, RuntimeState]] = {}
        unreachable: set[str] = set()
        for inst in rows:
            with self.lock:
                if inst.instance_id in self.inflight:
                    continue
            key = self.cloud.agents.key(inst.host_id)
            if key in unreachable or self.cloud.agents.lost(inst.host_id):
                continue
            agent = self.agent_of(inst)
            try:
                if agent.alive(inst.instance_id):
                    agent.trim_console(inst.instance_id)
                    continue
                if key not in hosts:
                    hosts[key] = agent.instances()
            except AgentUnavailable as err:
                if agent is self.agent:
                    raise  # the control host's agent: the whole pass waits
                log.info("host %s unreachable, its instances are checked later: %s", key, err)
                unreachable.add(key)
                continue
            on_host = hosts[key].get(inst.instance_id, RuntimeState.ABSENT)
            if on_host == RuntimeState.RUNNING:
                continue  # alive by another measure (init just replaced): look again later
            if on_host == RuntimeState.ABSENT:
                log.warning("%s is running in the store but gone from the host: repairing",
                            inst.instance_id)
                self._submit(inst.instance_id)
                continue
            rebooting = agent.halt_reason(inst.instance_id) == "reboot"
            with self.cloud.store.write() as s:
                row = s.get(models.Instance, inst.instance_id)
                if row is None or row.state != "running":
                    continue
                if rebooting:  # a reboot inside: boots again, as RebootInstances does
                    if row.reboot_requested <= row.reboot_done:
                        row.reboot_requested += 1
                    self.wakeup.set()
                    continue
                row.transition("stopping", "stopped")
                row.state_reason_code = "Client.InstanceInitiatedShutdown"
                row.state_reason_message = ("Client.InstanceInitiatedShutdown: Instance "
                                            "initiated shutdown")
            self.wakeup.set()

    def _repair(self, inst: models.Instance) -> None:
        """A running instance whose runtime vanished from the host boots again on its disk."""
        agent = self.agent_of(inst)
        if agent.alive(inst.instance_id):
            return
        spec = self.spec(inst)
        self._ensure_vpc(spec.vpc, inst.host_id)
        self.mapping()
        agent.launch(spec)
        if not wait_until(lambda: agent.ssh_ready(spec), SSH_READY_TIMEOUT):
            raise TimeoutError(f"sshd of {inst.instance_id} did not answer in {SSH_READY_TIMEOUT}s")
        log.info("%s repaired", inst.instance_id)

    def _sync_power_states(self) -> None:
        """Each host agrees with the store both ways: a container running behind a
        `stopped` row is stopped; host objects that no live row placed there owns (seen so
        on two passes in a row, so a launch racing this pass is never taken) are swept."""
        seen: set[tuple[str, str]] = set()
        for key, agent in self.cloud.agents.live():
            try:
                seen |= self._sync_host(key, agent)
            except AgentUnavailable as err:
                if agent is self.agent:
                    raise
                log.info("host %s unreachable, swept later: %s", key, err)
                seen |= {o for o in self._orphans if o[0] == key}  # keep what it had
        self._orphans &= seen

    def _sync_host(self, key: str, agent: AgentContract) -> set[tuple[str, str]]:
        host = agent.instances()
        with self.cloud.store.read() as s:
            rows = {i.instance_id: i for i in s.scalars(select(models.Instance).where(
                models.Instance.instance_id.in_(list(host))))}
        candidates = set()
        for instance_id, on_host in host.items():
            row = rows.get(instance_id)
            with self.lock:
                if instance_id in self.inflight:
                    continue
            if row is None or row.state == "terminated" or \
                    self.cloud.agents.key(row.host_id) != key:
                candidates.add((key, instance_id))
            elif row.state == "stopped" and on_host == RuntimeState.RUNNING:
                log.warning("%s is stopped in the store but runs on the host: stopping it",
                            instance_id)
                agent.stop(self.spec(row), True)
        orphans = candidates & self._orphans
        self._orphans |= candidates
        self._orphans -= orphans
        if orphans:
            removed = agent.sweep(sorted(i for _, i in orphans))
            log.warning("swept host objects no instance owns%s: %s",
                        "" if agent is self.agent else f" on host {key}", ", ".join(removed))
        return candidates - orphans

    def hosts_back(self, host_ids: set[str]) -> None:
        """Hosts that were lost heartbeat again (called from the hosts controller)."""
        with self.lock:
            self._back |= host_ids
        self.wakeup.set()

    def _reconcile_returned(self, host_id: str) -> None:
        """A host back from `lost` holds what it held when it went silent; the store has
        moved on. What no row places there any more (terminated, or replaced elsewhere) is
        swept at once, not after the usual two passes: no launch can race for an instance
        whose row is gone or ended, and its address may already be another's. A row
        stopped meanwhile is stopped there; running rows missing there are repaired by the
        health check."""
        try:
            agent = self.cloud.agent_for(host_id)
            on_host = agent.instances()
            with self.cloud.store.read() as s:
                rows = {i.instance_id: i for i in s.scalars(select(models.Instance).where(
                    models.Instance.instance_id.in_(list(on_host))))}
            stale = sorted(i for i in on_host if rows.get(i) is None
                           or rows[i].state == "terminated"
                           or self.cloud.agents.key(rows[i].host_id) != host_id)
            if stale:
                log.warning("host %s is back: sweeping %s", host_id, ", ".join(
                    agent.sweep(stale)))
            for instance_id, state in on_host.items():
                row = rows.get(instance_id)
                if row is not None and instance_id not in stale and row.state == "stopped" \
                        and state == RuntimeState.RUNNING:
                    agent.stop(self.spec(row), True)
        except AgentUnavailable as err:
            log.info("host %s back but unreachable, reconciled later: %s", host_id, err)
            with self.lock:
                self._back.add(host_id)
        self._last_health = 0.0  # its running rows are checked on this pass

    def _collect_terminated(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.cloud.config.terminated_visible_seconds)
        with self.cloud.store.write() as s:
            gone = list(s.scalars(select(models.Instance.instance_id).where(
                models.Instance.state == "terminated", models.Instance.state_changed_at < cutoff)))
            if gone:
                bulk_delete(s, delete(models.Tag).where(models.Tag.resource_id.in_(gone)), gone)
                bulk_delete(s, delete(models.Instance).where(
                    models.Instance.instance_id.in_(gone)), gone)

    # -- after a restart -----------------------------------------------------------------
    def recover(self) -> None:
        """Bring every instance that should run back to running; re-map public IPs.
        With the agent away, this waits and runs again from the health check."""
        try:
            self._recover()
            self._recovered = True
        except AgentUnavailable as err:
            log.warning("recovery postponed: %s", err)
            self._recovered = False

    def _recover(self) -> None:
        with self.cloud.store.read() as s:
            rows = list(s.scalars(select(models.Instance).where(models.Instance.state == "running")))
        firewalls = self.firewalls()
        topology = self.topology({inst.vpc_id for inst in rows})
        by_host: dict[str | None, list[InstanceSpec]] = {}
        for inst in rows:
            host_id = None if self.cloud.agents.key(inst.host_id) == self.cloud.agents.key(
                None) else inst.host_id
            by_host.setdefault(host_id, []).append(self.spec(inst, firewalls, topology))
        self.agent.ensure_host_network()
        self._recover_host(None, by_host.pop(None, []))
        for host_id, specs in by_host.items():  # joined hosts: one away never blocks the rest
            try:
                self.cloud.agent_for(host_id).ensure_host_network()
                self._recover_host(host_id, specs)
            except AgentUnavailable as err:
                log.warning("host %s unreachable at recovery (its instances are repaired "
                            "when it answers): %s", host_id, err)
        self.wakeup.set()

    def _recover_host(self, host_id: str | None, specs: list[InstanceSpec]) -> None:
        agent = self.cloud.agent_for(host_id)
        for vpc in {spec.vpc.vpc_id: spec.vpc for spec in specs}.values():
            self._ensure_vpc(vpc, host_id)
        # The host map must say exactly what the store says (a crash may have cut a move).
        if host_id is None and self.cloud.network_controller is not None:
            self.cloud.network_controller.sync_public_ips()
        log.info("ensuring %d running instances%s", len(specs),
                 f" on host {host_id}" if host_id else "")
        for spec in specs:
            try:
                self.mapping()
                agent.launch(spec)  # idempotent: relaunches only what is not running
            except AgentUnavailable:
                raise
            except Exception:
                log.exception("recovering %s failed", spec.instance_id)
