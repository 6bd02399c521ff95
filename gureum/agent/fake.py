"""An agent that keeps its host in memory: the fast test tier's stand-in for a host.

It keeps the contract's rules (idempotent calls, nothing half-made on failure, the
same errors) so handlers and controllers can be tested in-process without root, and it
lets a test do to the "host" what the world does to a real one: an instance's init
exiting, a container vanishing, an unknown container appearing, a failing call.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from gureum.agent.contract import (
    AgentContract,
    Firewall,
    GuestDns,
    HealthReport,
    InstanceMetadata,
    InstanceSpec,
    LoadBalancerSpec,
    PublicMap,
    RuntimeState,
    SnapshotRequest,
    StoredChunk,
    VolumeAttachment,
    VpcNetwork,
    VpcServices,
    VxlanSegment,
)
from gureum.errors import HostError, VolumeBusy, VolumeHeld


@dataclass
class FakeInstance:
    spec: InstanceSpec
    state: RuntimeState = RuntimeState.RUNNING
    disk: bool = True  # kept across stop, gone with destroy
    firewall: Firewall | None = None
    halt_reason: str = ""
    dns: GuestDns | None = None  # its /etc/resolv.conf, as the last boot or push wrote it


class FakeAgent(AgentContract):
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.host_network = False
        self.vpcs: dict[str, VpcNetwork] = {}
        self.served: dict[str, VpcServices] = {}  # what each VPC's DNS and IMDS answer
        self.public_ips: PublicMap = {}
        self.segments: dict[str, VxlanSegment] = {}  # VPC id -> its VXLAN segment here
        self.instances_: dict[str, FakeInstance] = {}
        self.disks: set[str] = set()
        self.consoles: dict[str, bytearray] = defaultdict(bytearray)  # kept across stops
        self.boots: dict[str, int] = defaultdict(int)
        self.last_spec: dict[str, InstanceSpec] = {}
        self.lbs: dict[str, LoadBalancerSpec] = {}
        self.lb_running: dict[str, bool] = {}
        self.down: set[str] = set()  # server names whose health checks fail
        self.published: dict[str, list[Any]] = {}
        self.busy_ports: set[int] = set()  # ports "taken" on the host
        self.cpu_load: dict[str, float] = {}  # vCPUs an instance keeps busy
        self.lb_counters: dict[str, dict[str, float]] = {}
        self.cpu_clock: dict[str, tuple[float, float]] = {}
        self.failures: dict[str, list[Exception]] = defaultdict(list)
        self.calls: list[tuple[str, str]] = []  # (method, instance id or "")
        # EBS: volume id -> GiB; snapshot id -> (volume id, GiB); volume id -> (instance,
        # device) while mounted in a running instance; volumes "in use" inside.
        self.volumes: dict[str, int] = {}
        self.snapshots: dict[str, tuple[str, int]] = {}
        self.mounted: dict[str, tuple[str, str]] = {}
        self.attached: dict[str, VolumeAttachment] = {}  # the latest attach of each volume
        self.busy_volumes: set[str] = set()
        self.receiving: dict[str, bytes] = {}  # files arriving from another host
        self.adopted: dict[str, int] = {}  # root disks moved here: volume id -> slot
        self.images: dict[str, str] = {}

    # -- what a test does to the host -----------------------------------------------------
    def fail_next(self, method: str, error: Exception | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` raise `error` (a HostError by default)."""
        self.failures[method] += [error or HostError(f"injected failure of {method}")] * times

    def init_exits(self, instance_id: str, reason: str = "") -> None:
        """The instance's init ended by itself (a poweroff inside; `reason` "reboot": a
        reboot inside, as the systemd image reports it)."""
        with self.lock:
            self.instances_[instance_id].state = RuntimeState.STOPPED
            self.instances_[instance_id].halt_reason = reason

    def vanish(self, instance_id: str) -> None:
        """Someone removed the instance's runtime object behind our back (disk stays)."""
        with self.lock:
            del self.instances_[instance_id]

    def plant(self, spec: InstanceSpec) -> None:
        """A running instance that no one asked for (left by a crash or by hand)."""
        with self.lock:
            self.instances_[spec.instance_id] = FakeInstance(spec)
            self.disks.add(spec.instance_id)

    def _enter(self, method: str, instance_id: str = "") -> None:
        with self.lock:
            self.calls.append((method, instance_id))
            pending = self.failures.get(method)
            if pending:
                raise pending.pop(0)

    # -- host-wide ---------------------------------------------------------------------------
    def ensure_host_network(self) -> bool:
        self._enter("ensure_host_network")
        remade, self.host_network = not self.host_network, True
        return remade

    def remove_host_network(self) -> None:
        self._enter("remove_host_network")
        self.host_network = False
        self.public_ips = {}

    def remove_cgroup_parents(self) -> None:
        self._enter("remove_cgroup_parents")

    def host_objects(self) -> dict[str, list[str]]:
        self._enter("host_objects")
        with self.lock:
            return {
                "containers": sorted(self.instances_),
                "disks": sorted(self.disks),
                "routers": sorted(self.vpcs),
                "vxlan_devices": sorted(self.segments),
                "load_balancers": sorted(self.lbs),
                "public_ips": sorted(self.public_ips),
                "host_network": ["table"] if self.host_network else [],
            }

    # -- VPCs and public addresses -----------------------------------------------------------
    def ensure_vpc(self, vpc: VpcNetwork) -> None:
        self._enter("ensure_vpc", vpc.vpc_id)
        with self.lock:
            self.vpcs[vpc.vpc_id] = vpc

    def remove_vpc(self, vpc_id: str) -> None:
        self._enter("remove_vpc", vpc_id)
        with self.lock:
            self.vpcs.pop(vpc_id, None)
            self.served.pop(vpc_id, None)
            self.segments.pop(vpc_id, None)  # the device lives in the router

    def serve_vpc(self, services: VpcServices) -> None:
        self._enter("serve_vpc", services.vpc.vpc_id)
        with self.lock:
            self.vpcs[services.vpc.vpc_id] = services.vpc
            self.served[services.vpc.vpc_id] = services

    def serve_instance(self, vpc_id: str, private_ip: str, metadata: InstanceMetadata) -> None:
        self._enter("serve_instance", vpc_id)
        with self.lock:
            served = self.served.get(vpc_id)
            if served is None:
                raise HostError(f"VPC {vpc_id} is not served on this host")
            self.served[vpc_id] = dataclasses.replace(
                served, instances={**served.instances, private_ip: metadata})

    def sync_vpc_peers(self, vpc: VpcNetwork, segment: VxlanSegment) -> None:
        self._enter("sync_vpc_peers", vpc.vpc_id)
        with self.lock:
            if not segment.peers:
                self.segments.pop(vpc.vpc_id, None)
                return
            self.vpcs[vpc.vpc_id] = vpc
            self.segments[vpc.vpc_id] = segment

    def vpc_routers(self) -> list[str]:
        self._enter("vpc_routers")
        with self.lock:
            return sorted(self.vpcs)

    def sync_public_ips(self, wanted: PublicMap) -> None:
        self._enter("sync_public_ips")
        with self.lock:
            self.public_ips = {k: list(v) for k, v in wanted.items()}

    # -- instances -------------------------------------------------------------------------
    def launch(self, spec: InstanceSpec) -> None:
        self._enter("launch", spec.instance_id)
        with self.lock:
            self.last_spec[spec.instance_id] = spec
            if spec.vpc.vpc_id not in self.vpcs:
                raise HostError(f"router of {spec.vpc.vpc_id} missing: ensure_vpc first")
            current = self.instances_.get(spec.instance_id)
            if spec.public_ip:  # as the real agent: a launch maps its own public address
                self.public_ips[spec.public_ip] = [spec.private_ip, spec.vpc.index]
            if current is not None and current.state == RuntimeState.RUNNING:
                current.spec = spec  # as the real agent: its interfaces made current
                return
            self.instances_[spec.instance_id] = FakeInstance(spec, firewall=spec.firewall,
                                                             dns=spec.dns)
            if spec.root_volume_id:
                self.volumes.setdefault(spec.root_volume_id, spec.volume_gib)
            for volume in spec.volumes:
                self.mounted[volume.volume_id] = (spec.instance_id, volume.device)
            self.boots[spec.instance_id] += 1
            self.consoles[spec.instance_id] += f"[fake] boot {self.boots[spec.instance_id]} of {spec.instance_id}\n".encode()
            self.disks.add(spec.instance_id)

    def stop(self, spec: InstanceSpec, force: bool) -> None:
        self._enter("stop", spec.instance_id)
        with self.lock:
            self.instances_.pop(spec.instance_id, None)
            self._unmount_all(spec.instance_id)
            if spec.public_ip:
                self.public_ips.pop(spec.public_ip, None)

    def reboot(self, spec: InstanceSpec) -> None:
        self._enter("reboot", spec.instance_id)
        with self.lock:
            self.instances_.pop(spec.instance_id, None)
        self.launch(spec)

    def destroy(self, spec: InstanceSpec) -> None:
        self._enter("destroy", spec.instance_id)
        with self.lock:
            self.instances_.pop(spec.instance_id, None)
            self._unmount_all(spec.instance_id)
            if spec.public_ip:
                self.public_ips.pop(spec.public_ip, None)
            self.disks.discard(spec.instance_id)
            self.consoles.pop(spec.instance_id, None)

    def status(self, spec: InstanceSpec) -> RuntimeState:
        self._enter("status", spec.instance_id)
        with self.lock:
            inst = self.instances_.get(spec.instance_id)
            return inst.state if inst else RuntimeState.ABSENT

    def ssh_ready(self, spec: InstanceSpec) -> bool:
        self._enter("ssh_ready", spec.instance_id)
        return self.alive(spec.instance_id)

    def alive(self, instance_id: str) -> bool:
        with self.lock:
            inst = self.instances_.get(instance_id)
            return inst is not None and inst.state == RuntimeState.RUNNING

    def halt_reason(self, instance_id: str) -> str:
        self._enter("halt_reason", instance_id)
        with self.lock:
            inst = self.instances_.get(instance_id)
            return inst.halt_reason if inst is not None else ""

    def instances(self) -> dict[str, RuntimeState]:
        self._enter("instances")
        with self.lock:
            found = {i: inst.state for i, inst in self.instances_.items()}
            for instance_id in self.disks:
                found.setdefault(instance_id, RuntimeState.ABSENT)
            return found

    def sweep(self, instance_ids: list[str]) -> list[str]:
        self._enter("sweep")
        with self.lock:
            gone = [i for i in instance_ids if i in self.instances_ or i in self.disks]
            for instance_id in gone:
                self.instances_.pop(instance_id, None)
                self.disks.discard(instance_id)
                self.consoles.pop(instance_id, None)
            return gone

    def counters(self, instance_ids: list[str]) -> dict[str, list[float]]:
        """CPU seconds grow at `cpu_load[id]` vCPUs' worth since launch (a test sets it)."""
        self._enter("counters")
        now = time.monotonic()
        with self.lock:
            out = {}
            for instance_id in instance_ids:
                if not self.alive(instance_id):
                    continue
                last, used = self.cpu_clock.get(instance_id, (now, 0.0))
                used += (now - last) * self.cpu_load.get(instance_id, 0.0)
                self.cpu_clock[instance_id] = (now, used)
                out[instance_id] = [used] + [0.0] * 8
            return out

    def configure_dns(self, instance_id: str, slot: int, dns: GuestDns) -> None:
        self._enter("configure_dns", instance_id)
        with self.lock:
            inst = self.instances_.get(instance_id)
            if inst is not None:
                inst.dns = dns

    def sync_interfaces(self, spec: InstanceSpec) -> None:
        self._enter("sync_interfaces", spec.instance_id)
        with self.lock:
            inst = self.instances_.get(spec.instance_id)
            if inst is None:
                raise HostError(f"no netns for {spec.instance_id}")
            inst.spec = spec

    def interface_addresses(self, instance_id: str) -> dict[str, list[str]]:
        self._enter("interface_addresses", instance_id)
        with self.lock:
            inst = self.instances_.get(instance_id)
            if inst is None:
                return {}
            spec = inst.spec
            out = {"eth0": [spec.private_ip, *spec.secondary_ips]}
            out.update({f"eth{i.device_index}": list(i.addresses) for i in spec.interfaces})
            return out

    def apply_firewalls(self, firewalls: dict[str, Firewall]) -> dict[str, str]:
        failed = {}
        for instance_id, rules in firewalls.items():
            self._enter("apply_firewalls", instance_id)  # what tests count: per instance
            with self.lock:
                inst = self.instances_.get(instance_id)
                if inst is None:
                    failed[instance_id] = f"NetnsMissing: no netns for {instance_id}"
                else:
                    inst.firewall = rules
        return failed

    # -- load balancers ------------------------------------------------------------------
    def ensure_load_balancer(self, spec: LoadBalancerSpec) -> None:
        self._enter("ensure_load_balancer", spec.lb_id)
        with self.lock:
            if spec.vpc.vpc_id not in self.vpcs:
                self.vpcs[spec.vpc.vpc_id] = spec.vpc
            self.lbs[spec.lb_id] = spec
            self.lb_running[spec.lb_id] = True
            if spec.public_ip:
                self.public_ips[spec.public_ip] = [spec.private_ip, spec.vpc.index]

    def remove_load_balancer(self, lb_id: str) -> None:
        self._enter("remove_load_balancer", lb_id)
        with self.lock:
            spec = self.lbs.pop(lb_id, None)
            self.lb_running.pop(lb_id, None)
            if spec is not None and spec.public_ip:
                self.public_ips.pop(spec.public_ip, None)

    def load_balancers(self) -> dict[str, bool]:
        self._enter("load_balancers")
        with self.lock:
            return dict(self.lb_running)

    def lb_stats(self, lb_id: str) -> dict[str, float]:
        """What a test put in `lb_counters[lb_id]` (requests "served" so far)."""
        self._enter("lb_stats", lb_id)
        with self.lock:
            return dict(self.lb_counters.get(lb_id, {})) if lb_id in self.lbs else {}

    def refresh_load_balancer(self, lb_id: str) -> None:
        self._enter("refresh_load_balancer", lb_id)

    def publish_ports(self, wanted: dict[str, list[Any]]) -> None:
        self._enter("publish_ports")
        with self.lock:
            self.published = {k: list(v) for k, v in wanted.items()}

    def host_port_in_use(self, port: int) -> bool:
        self._enter("host_port_in_use")
        return port in self.busy_ports

    def target_health(self, lb_id: str) -> HealthReport:
        """Every server up unless a test put it in `down`; a server is up only if its
        instance runs here (or it is an ip target)."""
        self._enter("target_health", lb_id)
        with self.lock:
            spec = self.lbs.get(lb_id)
            if spec is None or not self.lb_running.get(lb_id):
                return {}
            report: HealthReport = {}
            for backend in spec.backends:
                for server in backend.servers:
                    target = server.name.rsplit("_", 1)[0]
                    up = server.name not in self.down and (
                        not target.startswith("i-") or self.alive(target))
                    report.setdefault(backend.name, {})[server.name] = \
                        ["UP", "L7OK"] if up else ["DOWN", "L7STS"]
            return report

    # -- EBS --------------------------------------------------------------------------------
    def _unmount_all(self, instance_id: str) -> None:
        for volume_id, (owner, _) in list(self.mounted.items()):
            if owner == instance_id:
                del self.mounted[volume_id]

    def create_volume(self, volume_id: str, size_gib: int, snapshot_id: str | None) -> None:
        self._enter("create_volume", volume_id)
        with self.lock:
            if snapshot_id and snapshot_id not in self.snapshots:
                raise HostError(f"snapshot {snapshot_id} has no data on this host")
            self.volumes.setdefault(volume_id, size_gib)

    def delete_volume(self, volume_id: str) -> None:
        self._enter("delete_volume", volume_id)
        with self.lock:
            if volume_id in self.mounted:
                raise HostError(f"{volume_id} is mounted")
            self.volumes.pop(volume_id, None)

    def grow_volume(self, volume_id: str, size_gib: int) -> None:
        self._enter("grow_volume", volume_id)
        with self.lock:
            self.volumes[volume_id] = max(size_gib, self.volumes.get(volume_id, 0))

    def attach_volume(self, instance_id: str, slot: int, attachment: VolumeAttachment) -> None:
        self._enter("attach_volume", instance_id)
        with self.lock:
            if attachment.volume_id not in self.volumes:
                raise HostError(f"{attachment.volume_id} has no data on this host")
            owner = self.mounted.get(attachment.volume_id)
            if owner is not None and owner[0] != instance_id:
                raise VolumeHeld(f"{attachment.volume_id} is mounted in {owner[0]}")
            self.mounted[attachment.volume_id] = (instance_id, attachment.device)
            self.attached[attachment.volume_id] = attachment

    def detach_volume(self, instance_id: str, attachment: VolumeAttachment, force: bool) -> None:
        self._enter("detach_volume", instance_id)
        with self.lock:
            if attachment.volume_id in self.busy_volumes and not force:
                raise VolumeBusy(f"{attachment.volume_id} is in use in {instance_id}")
            if self.mounted.get(attachment.volume_id, ("",))[0] == instance_id:
                del self.mounted[attachment.volume_id]

    def snapshot_volumes(self, requests: list[SnapshotRequest]) -> None:
        self._enter("snapshot_volumes")
        with self.lock:
            for r in requests:  # a volume, or a snapshot being copied
                if r.volume_id not in self.volumes and r.volume_id not in self.snapshots:
                    raise HostError(f"volume {r.volume_id} has no data on this host")
            for r in requests:
                source = self.snapshots.get(r.volume_id) or (r.volume_id, self.volumes[r.volume_id])
                self.snapshots.setdefault(r.snapshot_id, source)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._enter("delete_snapshot", snapshot_id)
        with self.lock:
            self.snapshots.pop(snapshot_id, None)

    def read_stored(self, name: str, offset: int, length: int) -> StoredChunk:
        """The whole record in one piece: a volume's size, or a snapshot's source."""
        self._enter("read_stored", name)
        with self.lock:
            if name in self.volumes:
                record: Any = {"gib": self.volumes[name]}
            elif name in self.snapshots:
                record = {"source": list(self.snapshots[name])}
            else:
                raise HostError(f"{name} has no data on this host")
            data = json.dumps(record).encode()
            return StoredChunk(data if offset == 0 else b"", 0, len(data), offset > 0)

    def write_stored(self, name: str, chunk: StoredChunk, first: bool) -> None:
        self._enter("write_stored", name)
        with self.lock:
            if first:
                self.receiving[name] = b""
            self.receiving[name] = self.receiving.get(name, b"") + chunk.data
            if chunk.end:
                record = json.loads(self.receiving.pop(name))
                if "gib" in record:
                    self.volumes[name] = record["gib"]
                else:
                    self.snapshots[name] = tuple(record["source"])

    def adopt_root_disk(self, volume_id: str, slot: int) -> None:
        self._enter("adopt_root_disk", volume_id)
        with self.lock:
            if volume_id not in self.volumes:
                raise HostError(f"{volume_id} has no data on this host")
            self.adopted[volume_id] = slot

    def build_image(self, image_id: str, snapshot_id: str, parent_root: str | None) -> str:
        self._enter("build_image", image_id)
        with self.lock:
            if snapshot_id not in self.snapshots:
                raise HostError(f"snapshot {snapshot_id} has no data on this host")
            self.images[image_id] = f"/fake/images/{image_id}/rootfs"
            return self.images[image_id]

    def delete_image(self, image_id: str) -> None:
        self._enter("delete_image", image_id)
        with self.lock:
            self.images.pop(image_id, None)

    def console_tail(self, instance_id: str, nbytes: int) -> bytes:
        self._enter("console_tail", instance_id)
        with self.lock:
            return bytes(self.consoles.get(instance_id, b"")[-nbytes:])

    def trim_console(self, instance_id: str) -> None:
        self._enter("trim_console", instance_id)
