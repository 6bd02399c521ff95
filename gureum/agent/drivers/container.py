"""The container driver: an instance is a runc container in its own user namespace, on
a loop-mounted ext4 disk layered (overlay) over the shared image through an idmapped
mount. Container root is host uid `uid_base + slot * 65536`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from gureum.agent import firstboot, hostcmd, loopdev, mountns, procnet, storage
from gureum.agent.contract import GuestDns, InstanceSpec, IoLimits, RuntimeState
from gureum.agent.disk_pool import DiskPool
from gureum.agent.drivers.base import InstanceDriver
from gureum.agent.drivers.volume_mounts import VolumeMounts
from gureum.agent.runtime import blkio, oci_spec
from gureum.agent.runtime import cpu as cpu_placement
from gureum.agent.runtime.base import ContainerSpec
from gureum.agent.runtime.runc import RuncDriver
from gureum.agent.volume_store import VolumeStore
from gureum.config import Config
from gureum.crashpoints import crashpoint

BOOT_DIR = Path(__file__).resolve().parent.parent / "boot"
CGROUP_ROOT = Path("/sys/fs/cgroup")
MOUNTS = ("rootfs", "lower", "disk")  # innermost first: the unmount order
# Written by the systemd image's shutdown hook, read after its init ended.
HALT_FILE = ("var", "lib", "gureum", "halt")
RESOLV_CONF = ("etc", "resolv.conf")


class ContainerDriver(InstanceDriver):
    kind = "container"

    def __init__(self, config: Config, store: VolumeStore) -> None:
        super().__init__(config, store)
        self.runtime = RuncDriver(config.runc_root, config.prefix)
        self.disks = DiskPool(store.root / "pool", ensure=store.ensure)
        self.mounts = VolumeMounts(store)
        self.cpus = cpu_placement.host_cpus()

    def container_name(self, instance_id: str) -> str:
        return f"{self.config.prefix}-{instance_id}"

    def uid_base(self, slot: int) -> int:
        return self.config.uid_base + slot * 65536

    def seed_owner(self, spec: InstanceSpec) -> int:
        return self.uid_base(spec.slot)

    # -- storage and first boot ----------------------------------------------------------
    def prepare(self, spec: InstanceSpec, undo: ExitStack) -> None:
        d = self.instance_dir(spec.instance_id)
        base = self.uid_base(spec.slot)
        disk, diskdir = self.root_disk(spec), d / "disk"
        lower, rootfs = d / "lower", d / "rootfs"
        # Before any mount of an instance below it (agent/mountns.py).
        mountns.ensure_parent(self.config.instances_dir)
        if not disk.exists():
            if not self.disks.take(disk, spec.volume_gib):
                storage.create_disk(disk, spec.volume_gib, base)
            undo.callback(storage.remove_disk, disk)
        crashpoint("launch.disk_created")
        if not storage.is_mounted(diskdir):
            storage.mount_disk(disk, diskdir, base)
            undo.callback(storage.unmount, diskdir)
        if not storage.is_mounted(lower):
            storage.mount_lower(spec.image_root, lower, base)
            undo.callback(storage.unmount, lower)
        if not storage.is_mounted(rootfs):
            storage.mount_overlay(lower, diskdir, rootfs, base)
            undo.callback(storage.unmount, rootfs)
        crashpoint("launch.rootfs_mounted")
        marker = diskdir / "provisioned"
        if not marker.exists():
            firstboot.provision(rootfs, base, spec.hostname, spec.private_ip,
                                spec.authorized_key, spec.vpc.resolver,
                                f"{self.config.region}.compute.internal")
            marker.write_text(spec.instance_id + "\n")
        if spec.dns is not None:  # every boot, as DHCP tells a booting instance again
            firstboot.write_guest_file(rootfs, RESOLV_CONF, spec.dns.resolv_conf(), 0o644, base)
        self.mounts.ensure_share(d, base)
        undo.callback(self.mounts.release, d)
        for volume in spec.volumes:
            self.mounts.attach(d, base, volume.volume_id, volume.device)

    def adopt_disk(self, disk: Path, slot: int) -> None:
        """The disk's files belong to the uid range the instance had on its old host (its
        root directory is owned by that range's base): shift them to this slot's range,
        offline, keeping every id inside the instance and every mode bit."""
        point = self.config.instances_dir / f".adopt-{disk.stem}"
        point.mkdir(parents=True, exist_ok=True)
        with ExitStack() as undo:
            undo.callback(point.rmdir)
            loopdev.mount_file(disk, point, "ext4")
            undo.callback(storage.unmount, point)
            shift_owners(point, os.lstat(point).st_uid, self.uid_base(slot))

    def root_disk(self, spec: InstanceSpec) -> Path:
        legacy = self.instance_dir(spec.instance_id) / "disk.img"
        if spec.root_volume_id is None or legacy.exists():
            return legacy
        return self.store.volume(spec.root_volume_id)

    # -- data volumes -------------------------------------------------------------------
    def attach_volume(self, instance_id: str, slot: int, volume_id: str, device: str,
                      io: IoLimits | None = None) -> None:
        d = self.instance_dir(instance_id)
        self.mounts.attach(d, self.uid_base(slot), volume_id, device)
        disk = blkio.throttle(d / "vols" / volume_id, io)
        cgroup = blkio.BLKIO_ROOT / self.config.prefix / instance_id
        if disk is not None and cgroup.is_dir():  # not running: its next start sets them
            blkio.apply(cgroup, disk)

    def detach_volume(self, instance_id: str, volume_id: str, device: str, force: bool) -> None:
        d = self.instance_dir(instance_id)
        # The loop device goes back to the free pool: no limit of ours stays on it.
        loop = blkio.device_of(d / "vols" / volume_id) if storage.is_mounted(
            d / "vols" / volume_id) else None
        self.mounts.detach(d, volume_id, device, force)
        if loop is not None:
            blkio.clear(blkio.BLKIO_ROOT / self.config.prefix / instance_id, loop)

    def disk_throttles(self, spec: InstanceSpec) -> tuple[blkio.DiskThrottle, ...]:
        """The blkio limits of the prepared instance's loop devices: root disk, volumes."""
        d = self.instance_dir(spec.instance_id)
        found = [blkio.throttle(d / "disk", spec.root_io)]
        found += [blkio.throttle(d / "vols" / v.volume_id, v.io) for v in spec.volumes]
        return tuple(disk for disk in found if disk is not None)

    def release(self, instance_id: str) -> None:
        d = self.instance_dir(instance_id)
        self.mounts.release(d)
        for mount in MOUNTS:
            storage.unmount(d / mount)
        for controller in CGROUP_ROOT.iterdir():
            remove_cgroup(controller / self.config.prefix / instance_id)

    def erase(self, instance_id: str) -> None:
        d = self.instance_dir(instance_id)
        # Never delete through a mount: a volume still mounted below would lose its data.
        for mount in sorted((m for m in storage.mountpoints() if m.startswith(f"{d}/")),
                            key=len, reverse=True):
            hostcmd.run(["umount", "-l", mount], check=False)
        shutil.rmtree(d, ignore_errors=True)

    # -- the running instance ------------------------------------------------------------
    def spawn(self, spec: InstanceSpec, netns: Path, seed: Path, undo: ExitStack,
              wire: Callable[[int], None] | None = None) -> None:
        d = self.instance_dir(spec.instance_id)
        name = self.container_name(spec.instance_id)
        cgroup = f"/{self.config.prefix}/{spec.instance_id}"
        base = self.uid_base(spec.slot)
        before_start = None
        if spec.init_system == "systemd":
            # Its cgroup directories exist before runc binds them into the container.
            for controller in CGROUP_ROOT.iterdir():
                (controller / cgroup.lstrip("/")).mkdir(parents=True, exist_ok=True)

            def before_start(pid: int) -> None:
                # systemd makes its own cgroups under the instance's (init.scope,
                # system.slice): the hierarchies it manages belong to its root.
                for hierarchy in oci_spec.SYSTEMD_CGROUPS:
                    _chown_tree(CGROUP_ROOT / hierarchy / cgroup.lstrip("/"), base)
                if wire is not None:
                    wire(pid)
        self.runtime.start(ContainerSpec(
            name=name, bundle=d / "bundle", rootfs=d / "rootfs", hostname=spec.hostname,
            netns_path=netns, uid_base=base, limits=spec.limits, cgroup_path=cgroup,
            console_log=self.console_log(spec.instance_id), boot_dir=BOOT_DIR, seed_dir=seed,
            shared_mnt=self.mounts.share(d),
            init_system=spec.init_system,
            cpus=cpu_placement.cpuset(spec.limits.vcpus, spec.slot, self.cpus),
            disks=self.disk_throttles(spec), mounts_of=d,
        ), before_start=before_start)
        undo.callback(self.runtime.destroy, name)

    def halt(self, instance_id: str, timeout: float) -> None:
        signal = "TERM"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            config = json.loads((self.instance_dir(instance_id) / "bundle/config.json").read_text())
            signal = config.get("annotations", {}).get("org.gureum.stop-signal", signal)
        self.runtime.stop(self.container_name(instance_id), timeout=timeout, signal=signal)

    def configure_dns(self, instance_id: str, slot: int, dns: GuestDns) -> None:
        rootfs = self.instance_dir(instance_id) / "rootfs"
        if storage.is_mounted(rootfs):  # not running: its next boot writes it
            firstboot.write_guest_file(rootfs, RESOLV_CONF, dns.resolv_conf(), 0o644,
                                       self.uid_base(slot))

    def halt_reason(self, instance_id: str) -> str:
        """What the systemd image's shutdown hook wrote into the instance's disk ("reboot",
        "poweroff", "halt"), or "". The path is the guest's: no symlink is followed, and
        only a small regular file is read."""
        fd = None
        try:
            fd = os.open(self.instance_dir(instance_id) / "rootfs",
                         os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            for part in HALT_FILE:
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (
                    os.O_DIRECTORY if part != HALT_FILE[-1] else 0)
                child = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = child
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > 64:
                return ""
            return os.read(fd, 64).decode(errors="replace").strip()
        except OSError:
            return ""
        finally:
            if fd is not None:
                os.close(fd)

    def state(self, instance_id: str) -> RuntimeState:
        return self.runtime.state(self.container_name(instance_id))

    def states(self) -> dict[str, RuntimeState]:
        cut = len(self.config.prefix) + 1
        return {name[cut:]: state for name, state in self.runtime.states().items()}

    def alive(self, instance_id: str) -> bool:
        return self.runtime.alive(self.container_name(instance_id))

    def ready(self, instance_id: str) -> bool:
        """Whether sshd listens in the instance's own netns (its init's)."""
        pid = self.runtime.init_pid(self.container_name(instance_id))
        return pid is not None and procnet.listening(f"/proc/{pid}/ns/net", 22)

    def counters(self, instance_id: str) -> list[float] | None:
        """CPU time from the instance's cpuacct cgroup; traffic from its netns as its
        init sees it (eth0 of /proc/<pid>/net/dev): no subprocess."""
        pid = self.runtime.init_pid(self.container_name(instance_id))
        usage = CGROUP_ROOT / "cpuacct" / self.config.prefix / instance_id / "cpuacct.usage"
        try:
            cpu = int(usage.read_text()) / 1e9
            net = [0.0] * 4
            with open(f"/proc/{pid}/net/dev") as f:
                for line in f:
                    name, _, rest = line.partition(":")
                    if name.strip() == "eth0":
                        fields = [float(x) for x in rest.split()]
                        # The instance's receive is the world's "in".
                        net = [fields[0], fields[8], fields[1], fields[9]]
        except (OSError, ValueError, IndexError, TypeError):
            return None
        return [cpu, *net, *self._disk_io(instance_id)]

    def _disk_io(self, instance_id: str) -> list[float]:
        """[bytes read, bytes written, read ops, write ops] of the instance's disk: the
        loop device under its mounted disk.img, as the block layer counts them."""
        try:
            dev = os.stat(self.instance_dir(instance_id) / "disk").st_dev
            fields = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat").read_text().split()
            return [float(fields[2]) * 512, float(fields[6]) * 512, float(fields[0]),
                    float(fields[4])]
        except (OSError, IndexError, ValueError):
            return [0.0] * 4

    def close(self) -> None:
        self.disks.stop()
        mountns.release_parent(self.config.instances_dir)

    def host_objects(self) -> dict[str, list[str]]:
        return {"containers": self.runtime.list()}


def shift_owners(root: Path, old_base: int, new_base: int, span: int = 65536) -> int:
    """Every file under `root` owned inside [old_base, old_base + span) moves to the same
    place in [new_base, ...); returns how many changed. chown clears set-id bits, so the
    mode is put back."""
    if old_base == new_base:
        return 0

    def shifted(n: int) -> int:
        return n - old_base + new_base if old_base <= n < old_base + span else n

    def everything() -> Iterator[str]:  # never through a symlink: lstat, lchown
        yield str(root)
        for top, dirs, files in os.walk(root):
            yield from (os.path.join(top, name) for name in (*dirs, *files))

    changed = 0
    for path in everything():
        st = os.lstat(path)
        uid, gid = shifted(st.st_uid), shifted(st.st_gid)
        if (uid, gid) == (st.st_uid, st.st_gid):
            continue
        os.lchown(path, uid, gid)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o6000:
            os.chmod(path, stat.S_IMODE(st.st_mode))
        changed += 1
    return changed


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for child in path.iterdir():
        os.chown(child, uid, uid, follow_symlinks=False)


def remove_cgroup(path: Path) -> None:
    """A cgroup directory and the ones its instance made under it (systemd's), deepest
    first; a cgroup with tasks left stays."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir():
            remove_cgroup(child)
    with contextlib.suppress(FileNotFoundError, OSError):
        path.rmdir()
