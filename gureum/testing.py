"""A real `gureum up` in a subprocess on its own data directory, port, prefix and address
ranges: the harness shared by tests and benchmarks."""

from __future__ import annotations

import configparser
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig

from gureum.agent.agent import wait_until
from gureum.config import is_loopback
from gureum.pki import CloudCA

VENV_BIN = Path(sys.executable).parent
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o", "BatchMode=yes"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_vpc_octets = iter(range(30, 15, -1))  # 172.30/16, then 172.29/16, ...: one per server


class ManagedProcess:
    """A process this harness started; ended only through its own PID."""

    proc: subprocess.Popen[bytes] | None = None
    stop_timeout: float = 60

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                # A graceful stop that hangs is a bug to find, not a reason to lose the run:
                # every thread's stack goes to the process's output (faulthandler on
                # SIGUSR1), then it is killed, which instances survive by design.
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(1)
                print(f"WARNING: pid {self.proc.pid} did not stop within "
                      f"{self.stop_timeout} s; stacks dumped to its output, killed",
                      file=sys.stderr)
                self.kill()


class Server(ManagedProcess):
    """A `gureum up` subprocess; restartable on the same data directory."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1") -> None:
        """`host`: the API's listen address; beyond loopback the server speaks HTTPS (an
        address of an interface the test made, never the host's own network)."""
        self.data_dir = data_dir
        self.host = host
        self.port = free_port()
        octet = 100 + secrets.randbelow(100)
        vpc = next(_vpc_octets)
        self.env = {
            **os.environ,
            "GUREUM_DATA_DIR": str(data_dir),
            "GUREUM_PORT": str(self.port),
            "GUREUM_HOST": host,
            "GUREUM_PUBLIC_POOL": f"127.{octet}.0.0/16",
            # Not AWS's 172.31/16, so a developer's own `make up` can run beside the tests,
            # and a different /16 for each server a process starts (they share the host).
            "GUREUM_VPC_CIDR": f"172.{vpc}.0.0/16",
            "GUREUM_SUBNET_CIDR": f"172.{vpc}.0.0/20",
            "GUREUM_UID_BASE": str(0x5000_0000 + secrets.randbelow(64) * 0x100_0000),
            "GUREUM_MAX_INSTANCES": "64",
            "GUREUM_DNS_LISTEN": f"127.0.0.1:{free_port()}",
            "GUREUM_METRICS_INTERVAL": "2",
            "GUREUM_STRICT_SERIALIZER": "1",  # a handler's misspelt output key fails the test
            "AWS_CONFIG_FILE": str(data_dir / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(data_dir / "aws-credentials"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def gateway(self) -> str:
        return self.env["GUREUM_VPC_CIDR"].rsplit(".", 2)[0] + ".0.1"

    @property
    def tls(self) -> bool:
        return self.env.get("GUREUM_API_TLS") == "1" or not is_loopback(self.host)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_bundle(self) -> str | None:
        """The cloud CA's certificate clients verify an HTTPS endpoint with."""
        return str(CloudCA(self.data_dir).cert_path) if self.tls else None

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        with open(self.data_dir / "server.out", "ab") as log:
            self.proc = subprocess.Popen([str(VENV_BIN / "gureum"), "up"],
                                         env={**self.env, **(extra_env or {})},
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        deadline = time.monotonic() + 300  # the first run on a machine builds the image
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gureum up exited: {(self.data_dir / 'server.out').read_text()[-3000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gureum up did not start listening")

    def host_objects(self) -> dict[str, list[str]]:
        out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(self.data_dir), "doctor"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)["objects"]

    def credentials(self, profile: str = "gureum") -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "aws-credentials")
        return parser[profile]["aws_access_key_id"], parser[profile]["aws_secret_access_key"]

    def client(self, service: str = "ec2", access: str | None = None, secret: str | None = None):  # noqa: ANN201
        if access is None:
            access, secret = self.credentials()
        return boto3.client(service, endpoint_url=self.endpoint, region_name="gureum-1",
                            verify=self.ca_bundle,
                            aws_access_key_id=access, aws_secret_access_key=secret,
                            config=BotoConfig(retries={"max_attempts": 0}))

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "aws"), "--profile", "gureum", *args],
                              env=self.env, capture_output=True, text=True, check=check)


class AgentProcess(ManagedProcess):
    """A `gureum agent` subprocess serving `server`'s data directory."""

    stop_timeout = 30

    def __init__(self, server: Server) -> None:
        self.server = server
        self.socket = server.data_dir / "agent.sock"
        server.env["GUREUM_AGENT_SOCKET"] = str(self.socket)

    def start(self) -> None:
        self.proc = subprocess.Popen([str(VENV_BIN / "gureum"), "agent", "--socket", str(self.socket)],
                                     env=self.server.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_for(self.socket.exists, 20):
            raise RuntimeError("gureum agent did not open its socket")


def tcp_open(ip: str, port: int, timeout: float = 0.3) -> bool:
    """Whether a TCP connection to ip:port completes within `timeout`."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def offline_pip_env() -> dict[str, str]:
    """pip settings that keep `gureum deploy`'s dependency installs on the machine: the
    file indexes pip is configured with, when it has any (tests and benches send no
    packet off the machine)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                         capture_output=True, text=True).stdout
    local = [url for line in out.splitlines() if "index-url" in line
             for url in line.split("=", 1)[1].strip("'\" ").split() if url.startswith("file://")]
    return {"PIP_INDEX_URL": local[0], "PIP_EXTRA_INDEX_URL": " ".join(local[1:])} if local else {}


def ssh_banner(ip: str, connect_timeout: float = 0.05) -> bool:
    """Whether an sshd answers with its banner on ip:22."""
    try:
        with socket.create_connection((ip, 22), timeout=connect_timeout) as s:
            s.settimeout(1)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    return wait_until(predicate, timeout, interval)


def ssh(key: Path, address: str, command: str, timeout: float = 30,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{address}", command],
                          capture_output=True, text=True, timeout=timeout, check=check)


def web_server_user_data(prefix: str = "") -> str:
    """User data for a web server on :8080 that answers `<prefix><hostname>`, then the
    headers a load balancer adds and the address the connection came from."""
    return """#!/bin/bash
cat > /srv/web.py <<'EOF'
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        h = self.headers
        body = (f"PREFIX{socket.gethostname()} xff={h.get('X-Forwarded-For')} "
                f"proto={h.get('X-Forwarded-Proto')} port={h.get('X-Forwarded-Port')} "
                f"client={self.client_address[0]}\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()
EOF
nohup python3 /srv/web.py >/var/log/web.log 2>&1 &
""".replace("PREFIX", prefix)


class RequestStream:
    """A steady stream of requests (about 20 a second) in a thread while a `with` block
    runs, for tests and benches of rollouts: what answered each, and when. `ask` makes one
    request and returns what answered (a release name); anything it raises, or a reply it
    refuses with ValueError, counts as a failed request."""

    def __init__(self, ask: Callable[[], str]) -> None:
        import threading

        self.ask = ask
        self.answers: list[tuple[float, str | None, str]] = []  # (when, answer, failure)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append((time.monotonic(), self.ask(), ""))
            except (OSError, ValueError) as err:
                self.answers.append((time.monotonic(), None, repr(err)))
            time.sleep(0.05)

    def __enter__(self) -> RequestStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def seen(self) -> list[str]:
        return [answer for _, answer, _ in self.answers if answer is not None]

    def failures(self, since: float = 0.0) -> list[str]:
        return [why for t, answer, why in self.answers if answer is None and t >= since]

    def all_on(self, answer: str, since: float) -> float:
        """Seconds from `since` until every answer after was `answer`."""
        return max((t for t, a, _ in self.answers if t >= since and a != answer),
                   default=since) - since
