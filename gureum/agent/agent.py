"""The host agent: the code that touches the kernel for instances and VPCs.

It implements `gureum.agent.contract.AgentContract`. Each operation is idempotent and
composed of steps inside an ExitStack: a step that succeeds registers its undo, and a
failure unwinds everything made so far. The control plane calls it in-process, or over
a socket through `RemoteAgent` when `gureum agent` runs it as its own process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from gureum.agent import firewall, hostcmd, metadata, network, storage, vxlan
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
    VpcNetwork,
    VpcServices,
    VxlanSegment,
)
from gureum.agent.drivers import driver_for
from gureum.agent.drivers.container import remove_cgroup
from gureum.agent.ebs import EbsOperations
from gureum.agent.lb.manager import LoadBalancers
from gureum.agent.steps import side_by_side
from gureum.agent.volume_store import VolumeStore
from gureum.agent.vpc_services import VpcListeners
from gureum.config import Config
from gureum.crashpoints import crashpoint
from gureum.errors import HostError

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONSOLE_LIMIT, CONSOLE_KEEP = 1 << 20, 256 << 10  # bytes of console log kept on the host


class HostAgent(EbsOperations, AgentContract):
    """The real agent: runc containers, netns, nftables and loop-mounted disks."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.plan = network.plan_for(config)
        self.store = VolumeStore(config.data_dir, config.volume_store_gib)
        self.driver = driver_for(config, self.store)
        self.lbs = LoadBalancers(self.plan, config.data_dir / "lb")
        self._vpcs: dict[str, VpcNetwork] = {}  # ensured since this process started
        # VPC id -> (port, VNI, peer hosts) of its rule in the host's tunnel guard, as
        # this process last wrote it (a restarted agent rewrites each rule once).
        self._guards: dict[str, tuple[int, int, tuple[str, ...]]] = {}
        self._vpc_lock = threading.Lock()
        config.instances_dir.mkdir(parents=True, exist_ok=True)
        # Loads what was served before; nothing listens until `resume` or a VPC call.
        self.listeners = VpcListeners(
            self.plan, config.data_dir / "vpc-services",
            metadata.token_secret(config.data_dir / "imds-token.secret",
                                  adopt=config.data_dir / "identity" / "imds-token.secret"),
            config.outbound)
        # Container roots must traverse down to their rootfs.
        for path in (config.data_dir, config.instances_dir):
            path.chmod(0o755)

    # -- names and paths -------------------------------------------------------------
    def instance_dir(self, instance_id: str) -> Path:
        return self.driver.instance_dir(instance_id)

    def console_log(self, instance_id: str) -> Path:
        return self.driver.console_log(instance_id)

    # -- host-wide -----------------------------------------------------------------
    def ensure_host_network(self) -> bool:
        remade = network.ensure_host_network(self.plan)
        if remade:
            with self._vpc_lock:
                self._vpcs.clear()  # their uplink marks went with the table
                self._guards.clear()  # and the tunnel guard's rules
        return remade

    def remove_host_network(self) -> None:
        """Host-wide objects go when no instance is left: the network, and the volume
        store's mount (its volumes stay in its file)."""
        network.remove_host_network(self.plan)
        self.driver.close()
        self.store.release()

    def ensure_vpc(self, vpc: VpcNetwork) -> None:
        """The VPC's router and uplink (a no-op when this process already built it so),
        with the listeners of what it serves."""
        with self._vpc_lock:
            if self._vpcs.get(vpc.vpc_id) != vpc or not os.path.exists(
                    self.plan.router_path(vpc.vpc_id)):
                network.ensure_vpc(self.plan, vpc)
                self._vpcs[vpc.vpc_id] = vpc
        self.listeners.bind(vpc.vpc_id)

    def remove_vpc(self, vpc_id: str) -> None:
        # Sockets first: one left open would keep the router's namespace alive, unseen.
        self.listeners.forget(vpc_id)
        with self._vpc_lock:
            network.remove_vpc(self.plan, vpc_id)  # its vxlan device goes with the router
            self._vpcs.pop(vpc_id, None)
            vxlan.apply_guard(self.plan, vpc_id, VxlanSegment(0, 0, ""))
            self._guards.pop(vpc_id, None)

    def sync_vpc_peers(self, vpc: VpcNetwork, segment: VxlanSegment) -> None:
        if segment.peers:  # an empty segment only removes: it never builds a router
            self.ensure_vpc(vpc)
        with self._vpc_lock:
            # The guard first: a new peer host's packets are let in before it sends any.
            guard = (segment.port, segment.vni, segment.remote_hosts)
            if self._guards.get(vpc.vpc_id) != guard:
                vxlan.apply_guard(self.plan, vpc.vpc_id, segment)
                self._guards[vpc.vpc_id] = guard
            if segment.peers or os.path.exists(self.plan.router_path(vpc.vpc_id)):
                vxlan.sync(self.plan, vpc, segment)

    def serve_vpc(self, services: VpcServices) -> None:
        self.ensure_vpc(services.vpc)
        self.listeners.serve(services)

    def serve_instance(self, vpc_id: str, private_ip: str, metadata: InstanceMetadata) -> None:
        self.listeners.serve_instance(vpc_id, private_ip, metadata)

    def resume(self) -> None:
        """At the start of a long-lived agent: serve every VPC it served before."""
        self.listeners.resume()

    def close(self) -> None:
        """The agent process ends: its listeners' sockets close (instances keep running)."""
        self.listeners.stop()

    def vpc_routers(self) -> list[str]:
        return network.vpc_routers(self.plan)

    # -- instance operations ---------------------------------------------------------
    def status(self, spec: InstanceSpec) -> RuntimeState:
        return self.driver.state(spec.instance_id)

    def launch(self, spec: InstanceSpec) -> None:
        """Make the instance run: disk, network, process. Idempotent; a running instance
        only gets its cable and public address checked."""
        if self.driver.state(spec.instance_id) == RuntimeState.RUNNING:
            self.ensure_vpc(spec.vpc)
            if not network.is_plumbed(self.plan, spec.vpc.vpc_id, spec.slot):
                network.plumb_instance(self.plan, spec.vpc.vpc_id, spec.instance_id, spec.slot,
                                       spec.private_ip, spec.subnet_cidr)
            self.sync_interfaces(spec)
            self._ensure_public_ip(spec)
            return
        self.driver.halt(spec.instance_id, timeout=0)  # a created or stopped leftover
        d = self.instance_dir(spec.instance_id)
        d.mkdir(exist_ok=True)
        d.chmod(0o755)
        netns = network.NETNS_DIR / self.plan.netns(spec.instance_id)
        seeds: list[Path] = []

        def disk(undo: contextlib.ExitStack) -> None:
            self.driver.prepare(spec, undo)
            seeds.append(self._write_seed(spec, self.driver.seed_owner(spec)))

        def place(undo: contextlib.ExitStack) -> None:
            """The VPC on this host, and no leftover of a crashed launch in the way."""
            self.ensure_vpc(spec.vpc)
            if netns.exists():
                # Without the netns there can be no veth, and a port entry left behind
                # names this same instance's address.
                network.delete_instance_netns(self.plan, spec.vpc.vpc_id, spec.instance_id,
                                              spec.slot)

        with contextlib.ExitStack() as undo:
            if spec.init_system == "systemd":
                # systemd needs a netns its own user namespace owns (sysfs mounts only
                # there): the runtime makes it, and it is named and wired like any other
                # while init still waits.
                side_by_side(undo, disk, place)
                self.driver.spawn(spec, netns, seeds[0], undo,
                                  wire=lambda pid: self._wire(spec, undo, pid))
                self._ensure_public_ip(spec, undo)
            else:
                # The disk and the network do not wait for each other: on two cores,
                # that is ~25 ms less from RunInstances to sshd.
                def network_side(undo: contextlib.ExitStack) -> None:
                    place(undo)
                    self._wire(spec, undo)
                    self._ensure_public_ip(spec, undo)

                side_by_side(undo, disk, network_side)
                self.driver.spawn(spec, netns, seeds[0], undo)
            crashpoint("launch.container_started")
            undo.pop_all()

    def _wire(self, spec: InstanceSpec, undo: contextlib.ExitStack, pid: int | None = None) -> None:
        """The instance's netns at its usual path (made here, or that of process `pid`),
        cabled to its VPC, with its firewall before the first packet can flow."""
        network.create_instance_netns(self.plan, spec.vpc.vpc_id, spec.instance_id, spec.slot,
                                      spec.private_ip, spec.subnet_cidr, pid=pid)
        undo.callback(network.delete_instance_netns, self.plan, spec.vpc.vpc_id,
                      spec.instance_id, spec.slot)
        if spec.secondary_ips or spec.interfaces or not spec.source_dest_check \
                or spec.ipv6_addresses:
            self.sync_interfaces(spec)
        if spec.firewall is not None:
            firewall.apply(self.plan.netns(spec.instance_id), spec.firewall, fresh=True)
        crashpoint("launch.netns_created")

    def _write_seed(self, spec: InstanceSpec, base: int) -> Path:
        """What the instance's user-data runner reads at boot (like cloud-init's NoCloud
        seed), rewritten at every launch so a changed user data is seen after a start."""
        seed = self.instance_dir(spec.instance_id) / "seed"
        seed.mkdir(mode=0o700, exist_ok=True)
        os.chown(seed, base, base)
        for name, data in (("user-data", spec.user_data or b""),
                           ("instance-id", spec.instance_id.encode()),
                           ("outbound", b"1" if self._outbound(spec) else b"0")):
            path = seed / name
            path.write_bytes(data)
            os.chown(path, base, base)
            path.chmod(0o600)
        return seed

    def _outbound(self, spec: InstanceSpec) -> bool:
        """Whether the instance may reach beyond its VPC: the operator allows it and its
        subnet routes to an attached internet gateway."""
        return self.plan.outbound and spec.subnet_cidr in spec.vpc.internet_subnets

    def sync_public_ips(self, wanted: PublicMap) -> None:
        """Make the host's public-IP map exactly `wanted`: public -> [private, VPC index]."""
        current = network.public_ip_mapping(self.plan)
        want = {public: (private, self.plan.mark_base | index)
                for public, (private, index) in wanted.items()}
        for public_ip, target in current.items():
            if want.get(public_ip) != target:
                network.unmap_public_ip(self.plan, public_ip)
        for public_ip, (private_ip, mark) in want.items():
            if current.get(public_ip) != (private_ip, mark):
                network.map_public_ip(self.plan, public_ip, private_ip, mark)

    def alive(self, instance_id: str) -> bool:
        return self.driver.alive(instance_id)

    def halt_reason(self, instance_id: str) -> str:
        return self.driver.halt_reason(instance_id)

    def console_tail(self, instance_id: str, nbytes: int) -> bytes:
        path = self.console_log(instance_id)
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - nbytes))
                return f.read()
        except FileNotFoundError:
            return b""

    def counters(self, instance_ids: list[str]) -> dict[str, list[float]]:
        out = {}
        for instance_id in instance_ids:
            values = self.driver.counters(instance_id)
            if values is not None:
                out[instance_id] = values
        return out

    def configure_dns(self, instance_id: str, slot: int, dns: GuestDns) -> None:
        self.driver.configure_dns(instance_id, slot, dns)

    def apply_firewalls(self, firewalls: dict[str, Firewall]) -> dict[str, str]:
        instance_of = {self.plan.netns(instance_id): instance_id for instance_id in firewalls}
        failed = firewall.apply_many({netns: firewalls[instance_id]
                                      for netns, instance_id in instance_of.items()})
        return {instance_of[netns]: f"{type(err).__name__}: {err}"
                for netns, err in failed.items()}

    def sync_interfaces(self, spec: InstanceSpec) -> None:
        if not (network.NETNS_DIR / self.plan.netns(spec.instance_id)).exists():
            raise HostError(f"no netns for {spec.instance_id}")
        network.sync_interfaces(self.plan, spec.vpc.vpc_id, spec.instance_id, spec.slot,
                                spec.private_ip, spec.subnet_cidr, spec.secondary_ips,
                                spec.interfaces, spec.source_dest_check,
                                spec.ipv6_addresses, spec.subnet_ipv6_cidr)

    def interface_addresses(self, instance_id: str) -> dict[str, list[str]]:
        return network.interface_addresses(self.plan, instance_id)

    # -- load balancers ------------------------------------------------------------------
    def ensure_load_balancer(self, spec: LoadBalancerSpec) -> None:
        self.ensure_vpc(spec.vpc)
        self.lbs.ensure(spec)

    def remove_load_balancer(self, lb_id: str) -> None:
        self.lbs.remove(lb_id)

    def load_balancers(self) -> dict[str, bool]:
        return self.lbs.present()

    def lb_stats(self, lb_id: str) -> dict[str, float]:
        return self.lbs.stats(lb_id)

    def refresh_load_balancer(self, lb_id: str) -> None:
        self.lbs.refresh(lb_id)

    def publish_ports(self, wanted: dict[str, list[Any]]) -> None:
        network.set_published(self.plan, {
            int(port): (address, target, self.plan.mark_base | index)
            for port, (address, target, index) in wanted.items()})

    def host_port_in_use(self, port: int) -> bool:
        return bool(self.plan.publish_address) and network.port_in_use(
            self.plan.publish_address, port)

    def target_health(self, lb_id: str) -> HealthReport:
        return self.lbs.health(lb_id)

    def trim_console(self, instance_id: str) -> None:
        """Bound the console log on the host's disk. The instance writes it with
        O_APPEND, so truncating under it is safe: its next write lands at the new end."""
        limit, keep = CONSOLE_LIMIT, CONSOLE_KEEP
        path = self.console_log(instance_id)
        try:
            if path.stat().st_size <= limit:
                return
            with open(path, "r+b") as f:
                f.seek(-keep, 2)
                tail = f.read()
                f.seek(0)
                f.write(tail)
                f.truncate(len(tail))
        except OSError:
            pass

    def _ensure_public_ip(self, spec: InstanceSpec,
                          undo: contextlib.ExitStack | None = None) -> None:
        if spec.public_ip:
            network.map_public_ip(self.plan, spec.public_ip, spec.private_ip,
                                  self.plan.mark(spec.vpc))
            if undo is not None:
                undo.callback(network.unmap_public_ip, self.plan, spec.public_ip)

    def ssh_ready(self, spec: InstanceSpec) -> bool:
        return self.driver.ready(spec.instance_id)

    def stop(self, spec: InstanceSpec, force: bool = False) -> None:
        """Everything but the disk goes. Idempotent."""
        self.driver.halt(spec.instance_id, timeout=0 if force else 10)
        crashpoint("stop.container_stopped")
        if spec.public_ip:
            network.unmap_public_ip(self.plan, spec.public_ip)
        network.delete_instance_netns(self.plan, spec.vpc.vpc_id, spec.instance_id, spec.slot)
        firewall.forget(self.plan.netns(spec.instance_id))
        self.driver.release(spec.instance_id)

    def reboot(self, spec: InstanceSpec) -> None:
        self.driver.halt(spec.instance_id, timeout=10)
        crashpoint("reboot.container_stopped")
        self.launch(spec)

    def destroy(self, spec: InstanceSpec) -> None:
        """Terminate: nothing of the instance remains. Idempotent."""
        self.stop(spec, force=True)
        crashpoint("terminate.stopped")
        self.driver.erase(spec.instance_id)

    def instances(self) -> dict[str, RuntimeState]:
        p = self.config.prefix
        found = self.driver.states()
        if self.config.instances_dir.exists():
            for d in self.config.instances_dir.iterdir():
                if d.is_dir():
                    found.setdefault(d.name, RuntimeState.ABSENT)
        if network.NETNS_DIR.exists():
            for n in network.NETNS_DIR.iterdir():
                if n.name.startswith(f"{p}-i-"):
                    found.setdefault(n.name[len(p) + 1:], RuntimeState.ABSENT)
        return found

    def sweep(self, instance_ids: list[str]) -> list[str]:
        """Without a spec: the router port goes with the netns (the veth pair dies with
        it); an anti-spoof entry naming that port is replaced by the next launch on it."""
        present, removed = self.instances(), []
        for instance_id in instance_ids:
            if instance_id not in present:
                continue
            self.driver.halt(instance_id, timeout=0)
            ns = network.NETNS_DIR / self.plan.netns(instance_id)
            if ns.exists():
                hostcmd.run(["ip", "netns", "del", ns.name])
            self.driver.release(instance_id)
            self.driver.erase(instance_id)
            removed.append(instance_id)
        return removed

    # -- inventory (gureum doctor, leak checks) -------------------------------------
    def host_objects(self) -> dict[str, list[str]]:
        p = self.config.prefix
        objects: dict[str, list[str]] = {}
        netns_dir = network.NETNS_DIR
        objects["netns"] = sorted(n.name for n in netns_dir.iterdir()
                                  if n.name.startswith(p)) if netns_dir.exists() else []
        links = json.loads(hostcmd.run(["ip", "-j", "link", "show"]) or "[]")
        objects["links"] = sorted(link["ifname"] for link in links
                                  if link["ifname"].startswith(p))
        objects["ip_rules"] = network.our_rules(self.plan)
        objects["ip_routes"] = network.our_routes(self.plan)
        objects["proxy_neighbours"] = network.our_proxy_neighbours(self.plan)
        objects["vxlan_devices"] = vxlan.devices(self.plan)
        tables = hostcmd.run(["nft", "list", "tables"], check=False).split("\n")
        objects["nft_tables"] = [t for t in tables if t.split(" ")[-1] == p]
        data = str(self.config.data_dir)
        objects["mounts"] = sorted(m for m in storage.mountpoints() if m.startswith(data))
        objects["cgroups"] = sorted(str(c / p) for c in CGROUP_ROOT.iterdir() if (c / p).exists())
        objects.update(self.driver.host_objects())
        objects["load_balancer_processes"] = self.lbs.processes()
        loops = hostcmd.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], check=False)
        objects["loop_devices"] = [line for line in loops.splitlines() if data in line]
        return objects

    def clean_everything(self) -> None:
        """Remove every host object of this data directory, whatever state it is in
        (`gureum doctor --clean`): for a crashed install, or before deleting the data dir.
        Instances' disks are kept; their runtime objects are not."""
        for instance_id in self.driver.states():
            self.driver.halt(instance_id, timeout=0)
        for lb_id in self.lbs.present():
            self.lbs.remove(lb_id)
        # Processes runc no longer knows (its state lost) still sit in our cgroups.
        pids_root = CGROUP_ROOT / "pids" / self.config.prefix
        for tasks in pids_root.glob("*/tasks") if pids_root.exists() else []:
            for pid in tasks.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.2)
        for mount in sorted(self.host_objects()["mounts"], key=len, reverse=True):
            hostcmd.run(["umount", "-l", mount], check=False)
        for ns in self.host_objects()["netns"]:
            hostcmd.run(["ip", "netns", "del", ns], check=False)
        for link in self.host_objects()["links"]:
            hostcmd.run(["ip", "link", "del", link], check=False)
        network.remove_host_network(self.plan)
        for controller in CGROUP_ROOT.iterdir():
            parent = controller / self.config.prefix
            if parent.exists():
                for child in parent.iterdir():
                    remove_cgroup(child)  # with what a systemd instance made inside
        self.remove_cgroup_parents()
        for line in self.host_objects()["loop_devices"]:
            hostcmd.run(["losetup", "-d", line.split()[0]], check=False)

    def remove_cgroup_parents(self) -> None:
        for controller in CGROUP_ROOT.iterdir():
            with contextlib.suppress(FileNotFoundError, OSError):
                (controller / self.config.prefix).rmdir()


def wait_until(predicate, timeout: float, interval: float = 0.01) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
