"""The OCI runtime spec of an instance: namespaces, idmaps, cgroup limits, seccomp, caps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gureum.agent.runtime import blkio
from gureum.agent.runtime import cpu as cpu_placement
from gureum.agent.runtime.base import ContainerSpec

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Present when the kernel accounts swap per cgroup (memory.memsw.*): runc refuses a swap
# limit otherwise.
SWAP_ACCOUNTING = CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes"
# Hierarchies systemd manages itself: the instance's own directory is given to its root.
SYSTEMD_CGROUPS = ("systemd", "unified")
# What stops systemd as a container's PID 1 (SIGTERM would make it re-execute itself).
SYSTEMD_STOP_SIGNAL = "37"  # SIGRTMIN+3: halt

# Docker's default capability set: enough for sshd, sudo and ordinary servers.
CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# Syscalls an instance never needs and that widen the kernel's attack surface.
DENIED_SYSCALLS = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load",
    "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
    "pivot_root", "query_module", "quotactl", "request_key", "setns", "settimeofday",
    "swapoff", "swapon", "sysfs", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
    "vm86", "vm86old",
]
# clone() flags that would make new namespaces (a nested user namespace above all).
_NAMESPACE_FLAGS = [0x10000000, 0x20000000, 0x40000000, 0x04000000, 0x08000000, 0x00020000,
                    0x02000000, 0x00000080]


def _seccomp() -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"names": DENIED_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        # glibc falls back to clone() when clone3 says ENOSYS; clone's flags we can filter.
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ]
    for flag in _NAMESPACE_FLAGS:
        rules.append({
            "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        })
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    }


def build(spec: ContainerSpec) -> dict[str, Any]:
    config = _build(spec)
    if spec.init_system == "systemd":
        _systemd(config, spec)
    return config


def _systemd(config: dict[str, Any], spec: ContainerSpec) -> None:
    """systemd as PID 1: its own cgroup namespace, each of the instance's cgroup
    directories at /sys/fs/cgroup/<hierarchy> (LXC's layout: read-only, but the ones
    systemd manages itself), a fresh sysfs (possible because runc makes the netns, so the
    container's user namespace owns it), and the halt signal systemd expects."""
    config["process"]["args"] = ["/bin/sh", "/usr/lib/gureum/init"]
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    linux["namespaces"] += [{"type": "network"}, {"type": "cgroup"}]
    linux["maskedPaths"] = [p for p in linux["maskedPaths"] if p != "/sys/fs/cgroup"]
    mounts = [m for m in config["mounts"] if m["destination"] != "/sys"]
    at = next(i for i, m in enumerate(mounts) if m["destination"] == "/run")
    cgroups = [{"destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "mode=755", "size=64k"]}]
    for hierarchy in sorted(p.name for p in CGROUP_ROOT.iterdir()):
        writable = hierarchy in SYSTEMD_CGROUPS
        cgroups.append({
            "destination": f"/sys/fs/cgroup/{hierarchy}", "type": "none",
            "source": str(CGROUP_ROOT / hierarchy / spec.cgroup_path.lstrip("/")),
            "options": ["rbind", "nosuid", "noexec", "nodev", "rw" if writable else "ro"]})
    mounts[at:at] = [{"destination": "/sys", "type": "sysfs", "source": "sysfs",
                      "options": ["nosuid", "noexec", "nodev", "ro"]}, *cgroups]
    # systemd mounts /run/lock itself unless it is one already (mount(2) is denied here).
    mounts.insert(at + len(cgroups) + 2, {
        "destination": "/run/lock", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=5120k"]})
    config["mounts"] = mounts
    config["annotations"] = {"org.gureum.init": "systemd",
                             "org.gureum.stop-signal": SYSTEMD_STOP_SIGNAL}


def _resources(spec: ContainerSpec) -> dict[str, Any]:
    """The instance's share of the host: vCPUs (a quota, a weight and, when smaller than
    the host, its own cores), memory without swap (a hog is OOM-killed in its own
    cgroup), tasks (a fork bomb stops there) and each disk's EBS rate."""
    limits = spec.limits
    memory = limits.memory_mib * 1024 * 1024
    cpu: dict[str, Any] = {"quota": limits.vcpus * 100000, "period": 100000,
                           "shares": cpu_placement.shares(limits.vcpus)}
    if spec.cpus is not None:
        cpu["cpus"] = spec.cpus
    resources: dict[str, Any] = {
        "devices": [{"allow": False, "access": "rwm"}],
        # memory+swap = memory: no swap even on a host that has some.
        "memory": {"limit": memory, **({"swap": memory} if SWAP_ACCOUNTING.exists() else {})},
        "cpu": cpu,
        "pids": {"limit": limits.pids},
    }
    if spec.disks:
        resources["blockIO"] = blkio.oci_block_io(spec.disks)
    return resources


def _build(spec: ContainerSpec) -> dict[str, Any]:
    idmap = [{"containerID": 0, "hostID": spec.uid_base, "size": 65536}]
    caps = list(CAPABILITIES)
    seed = [{"destination": "/run/gureum/seed", "type": "none", "source": str(spec.seed_dir),
             "options": ["bind", "ro", "nosuid", "nodev", "noexec"]}] if spec.seed_dir else []
    if spec.shared_mnt:
        seed.append({"destination": "/mnt", "type": "none", "source": str(spec.shared_mnt),
                     "options": ["rbind", "rslave", "nosuid", "nodev"]})
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/usr/bin/tini", "-s", "-g", "--", "/bin/sh", "/usr/lib/gureum/boot"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "container=gureum", "HOME=/root"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": str(spec.rootfs), "readonly": False},
        "hostname": spec.hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            # A netns made by the host forbids a fresh sysfs here: bind the host's, read-only.
            {"destination": "/sys", "type": "none", "source": "/sys",
             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=755", "size=65536k"]},
            {"destination": "/usr/lib/gureum", "type": "none", "source": str(spec.boot_dir),
             "options": ["bind", "ro", "nosuid", "nodev"]},
            *seed,
        ],
        "linux": {
            "uidMappings": idmap,
            "gidMappings": idmap,
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "user"}, {"type": "network", "path": str(spec.netns_path)},
            ],
            "cgroupsPath": spec.cgroup_path,
            "resources": _resources(spec),
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/fs/cgroup",
                "/sys/kernel", "/sys/devices/virtual/powercap",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
            "seccomp": _seccomp(),
        },
    }
