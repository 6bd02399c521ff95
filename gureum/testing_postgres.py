"""A private PostgreSQL server for tests: Debian's server binaries, a data directory and a
unix socket directory under /tmp, no TCP listener at all (nothing leaves the machine).

PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user
(the Popen child itself drops to it, so the PID we hold is the postmaster's and it is
stopped by that PID); as anyone else it runs as that user."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from gureum.testing import free_port, wait_for

SERVER_BINARIES = "/usr/lib/postgresql/*/bin"
# GUREUM_TEST_DATABASE=postgres: the fast tier runs on PostgreSQL, and with it the tests
# of PostgreSQL's own features (`make test` runs the tier once each way).
SELECTED = os.environ.get("GUREUM_TEST_DATABASE", "sqlite") == "postgres"


def server_bin_dir() -> Path | None:
    """The newest installed server's bin directory (Debian's postgresql-NN package)."""
    found = [Path(d) for d in glob.glob(SERVER_BINARIES) if Path(d, "postgres").exists()]
    return max(found, key=lambda d: int(d.parent.name)) if found else None


def available() -> bool:
    return server_bin_dir() is not None


class PostgresServer:
    """`start()` runs initdb and the postmaster; `url(db)` is SQLAlchemy's URL for it."""

    def __init__(self) -> None:
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt install postgresql)")
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="gureum-pg-", dir="/tmp"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        # Only names the socket file (.s.PGSQL.<port>): listen_addresses is empty.
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _as_server_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 30) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        subprocess.run([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], check=True, env=env,
                       cwd=self.root, capture_output=True, **self._as_server_user())
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 (the server's lifetime)
        # Durability off: a test database is thrown away. Enough connections for several
        # control planes (each pools up to 64) and the tests' own.
        self.proc = subprocess.Popen(
            [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
             "-k", str(self.socket_dir), "-c", "listen_addresses=", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=400"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root,
            start_new_session=True, **self._as_server_user())
        log.close()
        socket = self.socket_dir / f".s.PGSQL.{self.port}"
        if not wait_for(lambda: socket.exists() or self.proc.poll() is not None, timeout):
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {self.log_tail()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited: {self.log_tail()}")
        self._wait_accepting(timeout)

    def _wait_accepting(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn("postgres")).close()
                return
            except psycopg.OperationalError:  # "the database system is starting up"
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def log_tail(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def dsn(self, database: str) -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return (f"postgresql+psycopg://postgres@/{database}"
                f"?host={self.socket_dir}&port={self.port}")

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown by the postmaster's PID (SIGINT); SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
