"""One HAProxy per load balancer, in master-worker mode inside the load balancer's netns.

Started detached (it outlives `gureum up`, as instances do), known by the PID in its
pidfile and checked against /proc before any signal, so only a process we started is
ever ended. A new configuration is checked first (`haproxy -c`), then loaded with the
master's `reload`: the new worker takes the listening sockets, the old one finishes its
connections, so no connection fails during a change.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from gureum.agent import hostcmd
from gureum.agent.network import NETNS_DIR
from gureum.errors import HostError


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


def _master_reloads(files: LoadBalancerFiles) -> int | None:
    """How many times the master has reloaded (`show proc`), or None if it cannot say."""
    try:
        out = _unix_command(files.master, "show proc")
    except OSError:
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "master" and fields[2].isdigit():
            return int(fields[2])
    return None


def reload(files: LoadBalancerFiles) -> None:
    """Load the configuration now in files.config, without dropping connections, and wait
    until the master says it did: a reload asked for while the master re-executes itself
    is lost, and the caller must know (it retries)."""
    before = _master_reloads(files)
    try:
        _unix_command(files.master, "reload")
    except OSError as err:
        raise HostError(f"haproxy reload of {files.dir.name} failed: {err}") from None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = _master_reloads(files)
        if after is not None and (before is None or after > before):
            return
        time.sleep(0.02)
    raise HostError(f"haproxy for {files.dir.name} did not confirm its reload")


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
