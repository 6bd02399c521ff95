"""One HAProxy per load balancer, in master-worker mode inside the load balancer's netns.

Started detached (it outlives `gureum up`, as instances do), known by the PID in its
pidfile and checked against /proc before any signal, so only a process we started is
ever ended. A new configuration is checked first (`haproxy -c`), then loaded with the
master's `reload`: the new worker takes the listening sockets, the old one finishes its
connections, so no connection fails during a change. A reload returns once no old worker
can accept a new connection, so whatever follows meets the new configuration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from pathlib import Path

from gureum.agent import hostcmd, procnet
from gureum.agent.network import NETNS_DIR
from gureum.errors import HostError

log = logging.getLogger("gureum.lb")


class LoadBalancerFiles:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.config = directory / "haproxy.cfg"
        self.pidfile = directory / "haproxy.pid"
        self.master = directory / "master.sock"
        self.admin = directory / "admin.sock"
        self.placement = directory / "placement.json"
        self.spec = directory / "spec.json"  # the spec last applied
        self.consolidate = directory / "consolidate"  # when to turn run-time servers into config
        # Servers' health, written before each reload and read by the new worker: without
        # it every server restarts as up and unchecked, taking traffic before its check.
        self.server_state = directory / "servers.state"


def running(pid: int) -> bool:
    """Alive and not a zombie (a daemon's parent may never reap it here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def master_pid(files: LoadBalancerFiles) -> int | None:
    """The master's PID when it runs with our configuration; None otherwise."""
    try:
        pid = int(files.pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    if cmdline and cmdline[0].endswith(b"haproxy") and str(files.config).encode() in cmdline \
            and running(pid):
        return pid
    return None


def check_config(files: LoadBalancerFiles, text: str) -> None:
    candidate = files.dir / "haproxy.cfg.new"
    candidate.write_text(text)
    try:
        hostcmd.run(["haproxy", "-c", "-q", "-f", str(candidate)])
    finally:
        candidate.unlink(missing_ok=True)


def start(files: LoadBalancerFiles, netns: str) -> None:
    files.master.unlink(missing_ok=True)
    hostcmd.run(["nsenter", f"--net={NETNS_DIR / netns}", "haproxy", "-W", "-D",
                 "-p", str(files.pidfile), "-S", f"{files.master},mode,600",
                 "-f", str(files.config)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if master_pid(files) is not None and files.admin.exists():
            return
        time.sleep(0.02)
    raise HostError(f"haproxy for {files.dir.name} did not come up")


def _unix_command(path: Path, command: str) -> str:
    """One command on one of HAProxy's sockets; the answer ends with the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


class _Processes:
    """What the master's `show proc` says: its PID and reload count, the current workers
    ("# workers": PID, reloads) and the old ones still finishing ("# old workers")."""

    def __init__(self, text: str) -> None:
        self.master = 0
        self.reloads = -1
        self.workers: list[tuple[int, int]] = []
        self.old_workers: list[int] = []
        section = ""
        for line in text.splitlines():
            if line.startswith("#"):
                section = line.strip()
                continue
            fields = line.split()
            if len(fields) < 3 or not fields[0].isdigit() or not fields[2].isdigit():
                continue
            pid, kind, reloads = int(fields[0]), fields[1], int(fields[2])
            if kind == "master":
                self.master, self.reloads = pid, reloads
            elif kind == "worker" and section == "# workers":
                self.workers.append((pid, reloads))
            elif kind == "worker" and section == "# old workers":
                self.old_workers.append(pid)


def _show_proc(files: LoadBalancerFiles) -> _Processes | None:
    """The master's processes, or None if it cannot say (it re-executes itself)."""
    try:
        procs = _Processes(_unix_command(files.master, "show proc"))
    except OSError:
        return None
    return procs if procs.master else None


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets a process holds; empty once it has exited."""
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    return inodes


def _still_accepting(procs: _Processes) -> list[int]:
    """The old workers that still hold a listening socket of the netns, so may still
    accept a new connection with the old configuration. An old worker closes its
    listeners when the master tells it to stop; until then it shares the sockets with the
    new worker (handed over through the master), or, when that hand-over failed (an old
    worker too slow to answer it), keeps its own beside the new worker's (SO_REUSEPORT)."""
    if not procs.old_workers:  # the common case: without connections to finish, they exited
        return []
    listening = procnet.listening_inodes(f"/proc/{procs.master}/ns/net")
    return [pid for pid in procs.old_workers if _socket_inodes(pid) & listening]


def reload(files: LoadBalancerFiles) -> None:
    """Load the configuration now in files.config, without dropping connections, and wait
    until the new configuration serves every new connection: the master has reloaded (a
    reload asked for while it re-executes itself is lost, and the caller must know: it
    retries), its new worker runs, and no old worker accepts any more."""
    before = _show_proc(files)
    try:
        files.server_state.write_text(admin_command(files, "show servers state"))
    except OSError as err:  # the new worker starts without it: checks begin afresh
        log.warning("haproxy for %s: server state not saved: %s", files.dir.name, err)
    try:
        _unix_command(files.master, "reload")
    except OSError as err:
        raise HostError(f"haproxy reload of {files.dir.name} failed: {err}") from None
    deadline = time.monotonic() + 10
    reloaded: _Processes | None = None
    while time.monotonic() < deadline:
        procs = _show_proc(files)
        if procs is not None and (before is None or procs.reloads > before.reloads):
            reloaded = procs
            if any(reloads == 0 for _pid, reloads in procs.workers) \
                    and not _still_accepting(procs):
                return
        time.sleep(0.01)
    if reloaded is None:
        raise HostError(f"haproxy for {files.dir.name} did not confirm its reload")
    if not any(reloads == 0 for _pid, reloads in reloaded.workers):
        raise HostError(f"haproxy for {files.dir.name} reloaded without a new worker")
    raise HostError(f"haproxy for {files.dir.name} reloaded but its old workers "
                    f"{_still_accepting(reloaded)} still accept connections")


def admin_command(files: LoadBalancerFiles, command: str) -> str:
    return _unix_command(files.admin, command)


def stop(files: LoadBalancerFiles) -> None:
    """End the master (and so its workers) we started; idempotent."""
    pid = master_pid(files)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and running(pid):
        time.sleep(0.02)
    if running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
