"""The runc driver: detached containers that outlive the gureum process."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gureum.agent import hostcmd, mountns
from gureum.agent.runtime import oci_spec
from gureum.agent.runtime.base import ContainerSpec, RuntimeDriver, RuntimeState
from gureum.errors import HostCommandFailed


class RuncDriver(RuntimeDriver):
    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.prefix = prefix
        root.mkdir(parents=True, exist_ok=True)
        # name -> ((inode, mtime) of its state.json, (init pid, its start time)): parsing
        # the ~11 KB file was most of a liveness check, run for every instance every 2 s.
        self._inits: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
        self._inits_lock = threading.Lock()

    def _runc(self, *args: str, check: bool = True) -> str:
        return hostcmd.run(["runc", "--root", str(self.root), *args], check=check)

    def state(self, name: str) -> RuntimeState:
        # runc keeps every container it knows in <root>/<name>/state.json: without it the
        # container is absent, known without a process (a new launch asks three times).
        if not (self.root / name / "state.json").exists():
            return RuntimeState.ABSENT
        proc = subprocess.run(["runc", "--root", str(self.root), "state", name],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return RuntimeState.ABSENT
        status = json.loads(proc.stdout)["status"]
        return {"created": RuntimeState.CREATED, "running": RuntimeState.RUNNING}.get(
            status, RuntimeState.STOPPED)

    def start(self, spec: ContainerSpec,
              before_start: Callable[[int], None] | None = None) -> int:
        spec.bundle.mkdir(parents=True, exist_ok=True)
        (spec.bundle / "config.json").write_text(json.dumps(oci_spec.build(spec)))
        pidfile = spec.bundle / "init.pid"
        # Nothing to do between create and start: `run --detach` does both in one
        # runc process instead of two.
        verb = ["create"] if before_start is not None else ["run", "--detach"]
        cmd = ["runc", "--root", str(self.root), *verb, "--bundle", str(spec.bundle),
               "--pid-file", str(pidfile), spec.name]
        # The container inherits runc's stdio: its console is the console log file.
        with open(spec.console_log, "ab") as console:
            offset = console.tell()

            def run() -> subprocess.CompletedProcess:
                return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                      stderr=console)
            # tini's netns is the host's, at netns_path; systemd's is made by runc.
            netns = spec.netns_path if spec.init_system == "tini" else None
            proc = mountns.with_only(spec.mounts_of, run, netns) if spec.mounts_of else run()
        if proc.returncode != 0:
            with open(spec.console_log, "rb") as f:
                f.seek(offset)
                err = f.read().decode(errors="replace")
            self.destroy(spec.name)
            raise HostCommandFailed(cmd, proc.returncode, err)
        pid = int(pidfile.read_text())
        if before_start is None:
            return pid
        try:
            before_start(pid)
        except BaseException:
            self.destroy(spec.name)
            raise
        self._runc("start", spec.name)
        return pid

    def stop(self, name: str, timeout: float, signal: str = "TERM") -> None:
        if self.state(name) == RuntimeState.RUNNING:
            self._runc("kill", name, signal, check=False)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.state(name) == RuntimeState.RUNNING:
                time.sleep(0.02)
        self.destroy(name)

    def destroy(self, name: str) -> None:
        with self._inits_lock:
            self._inits.pop(name, None)
        if self.state(name) == RuntimeState.ABSENT:
            return
        self._runc("delete", "--force", name)

    def list(self) -> list[str]:
        return sorted(self.states())

    def states(self) -> dict[str, RuntimeState]:
        out = self._runc("list", "--format", "json", check=False)
        items = json.loads(out) if out.strip() and out.strip() != "null" else []
        known = {"created": RuntimeState.CREATED, "running": RuntimeState.RUNNING}
        return {c["id"]: known.get(c["status"], RuntimeState.STOPPED) for c in items or []
                if c["id"].startswith(self.prefix)}

    def _init(self, name: str) -> tuple[int, int]:
        """(pid, start time) of the container's init from runc's state file, parsed again
        only when runc rewrote it (it replaces the file: a new inode)."""
        path = self.root / name / "state.json"
        info = os.stat(path)
        key = (info.st_ino, info.st_mtime_ns)
        with self._inits_lock:
            known = self._inits.get(name)
        if known is not None and known[0] == key:
            return known[1]
        state = json.loads(path.read_text())
        init = (int(state["init_process_pid"]), int(state["init_process_start"]))
        with self._inits_lock:
            self._inits[name] = (key, init)
        return init

    def init_pid(self, name: str) -> int | None:
        """The container init's host PID from runc's state file (no subprocess)."""
        try:
            return self._init(name)[0]
        except (OSError, ValueError, KeyError):
            return None

    def alive(self, name: str) -> bool:
        """Cheap liveness for periodic checks: runc's state file and /proc, no subprocess."""
        try:
            pid, started = self._init(name)
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[19]) == int(started) and fields[0] != "Z"
        except (OSError, ValueError, KeyError, IndexError):
            return False
