"""Runtime configuration: flags and GUREUM_* environment variables, one data directory."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # listen on every address of the host


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass
class Config:
    data_dir: Path = field(default_factory=lambda: Path(_env("GUREUM_DATA_DIR", "/var/lib/gureum")))
    # Unset: state is SQLite in the data directory (one host). Set (e.g.
    # postgresql+psycopg://gureum@/gureum?host=/run/postgresql): state lives in that
    # database, and several control planes may share it (one leads the controllers).
    database_url: str = field(default_factory=lambda: _env("GUREUM_DATABASE_URL", ""))
    # How often a control plane that does not lead tries to (and the leader checks it
    # still does): the longest a dead leader's controllers stay unreplaced (seconds).
    leader_retry_seconds: float = field(
        default_factory=lambda: float(_env("GUREUM_LEADER_RETRY", "2")))
    host: str = field(default_factory=lambda: _env("GUREUM_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("GUREUM_PORT", "8773")))
    # The API (and console) beyond loopback is HTTPS only. "1" asks for HTTPS on loopback
    # too; "0" asks for plain HTTP, which is refused on any other address (api/tls.py).
    api_tls: str = field(default_factory=lambda: _env("GUREUM_API_TLS", ""))
    # The operator's own certificate and key (PEM files); unset, the cloud's CA signs one
    # for the listen address and host name (and GUREUM_API_NAMES, comma-separated).
    api_cert: str = field(default_factory=lambda: _env("GUREUM_API_CERT", ""))
    api_key: str = field(default_factory=lambda: _env("GUREUM_API_KEY", ""))
    api_names: str = field(default_factory=lambda: _env("GUREUM_API_NAMES", ""))
    # What clients verify the operator's certificate with (the profile's ca_bundle);
    # unset, their system's trust store.
    api_ca_bundle: str = field(default_factory=lambda: _env("GUREUM_API_CA_BUNDLE", ""))
    region: str = field(default_factory=lambda: _env("GUREUM_REGION", "gureum-1"))
    image_cache: Path = field(
        default_factory=lambda: Path(_env("GUREUM_IMAGE_CACHE", "/var/cache/gureum/images"))
    )
    # The default VPC of every account, as on AWS; one /20 default subnet per zone.
    vpc_cidr: str = field(default_factory=lambda: _env("GUREUM_VPC_CIDR", "172.31.0.0/16"))
    subnet_cidr: str = field(default_factory=lambda: _env("GUREUM_SUBNET_CIDR", "172.31.0.0/20"))
    # Where VPCs' Amazon-provided IPv6 /56 blocks come from (AmazonProvidedIpv6CidrBlock):
    # a unique local (ULA) range by default, so no address is routable beyond the machine.
    ipv6_pool: str = field(default_factory=lambda: _env("GUREUM_IPV6_POOL", "fd00:ec2::/32"))
    # Public addresses live on the loopback range so nothing ever leaves the machine.
    public_pool: str = field(default_factory=lambda: _env("GUREUM_PUBLIC_POOL", "127.100.0.0/16"))
    # Set: public addresses answer on this interface (other machines reach them: DNAT to
    # the instance or load balancer, proxy ARP for an on-link pool), and the pool may lie
    # outside loopback. Unset: the pool stays on loopback, reachable from this host only.
    public_interface: str = field(default_factory=lambda: _env("GUREUM_PUBLIC_INTERFACE", ""))
    # Set (the host's own address): internet-facing load balancers' listeners are published
    # on it, port for port, like Docker's -p (a host with one address).
    publish_address: str = field(default_factory=lambda: _env("GUREUM_PUBLISH_ADDRESS", ""))
    # Outbound internet for instances in subnets routed to an internet gateway (masquerade
    # on the host). Off unless the operator turns it on; always off in tests.
    outbound: bool = field(default_factory=lambda: _env("GUREUM_OUTBOUND", "0") == "1")
    # Unset: the host agent runs inside `gureum up`. Set: `gureum up` talks to a separate
    # `gureum agent` on this unix socket, and each can restart without the other.
    agent_socket: str = field(default_factory=lambda: _env("GUREUM_AGENT_SOCKET", ""))
    # What an instance is: "container" (runc; the only driver so far).
    instance_driver: str = field(default_factory=lambda: _env("GUREUM_INSTANCE_DRIVER", "container"))
    # gureum's authoritative DNS (load balancers' and instances' public names), UDP+TCP;
    # empty turns it off.
    dns_listen: str = field(default_factory=lambda: _env("GUREUM_DNS_LISTEN", "127.0.0.1:8053"))
    # How often the host measures instances for CloudWatch's AWS/EC2 metrics (seconds).
    metrics_interval: float = field(
        default_factory=lambda: float(_env("GUREUM_METRICS_INTERVAL", "10")))
    # Container root of instance slot N is host uid uid_base + N * 65536.
    uid_base: int = field(default_factory=lambda: int(_env("GUREUM_UID_BASE", str(0x4000_0000))))
    # What one instance may be: a type whose vCPUs exceed the host's cores times the CPU
    # overcommit, or whose memory limit exceeds the host's memory times the memory
    # overcommit, is InsufficientInstanceCapacity. Host figures default to this machine's.
    host_vcpus: int = field(default_factory=lambda: int(_env("GUREUM_HOST_VCPUS", str(
        os.cpu_count() or 1))))
    host_memory_mib: int = field(default_factory=lambda: int(_env(
        "GUREUM_HOST_MEMORY_MIB", str(_host_memory_mib()))))
    cpu_overcommit: float = field(default_factory=lambda: float(_env("GUREUM_CPU_OVERCOMMIT", "4")))
    memory_overcommit: float = field(
        default_factory=lambda: float(_env("GUREUM_MEMORY_OVERCOMMIT", "1")))
    # Placement across hosts: with "1", a host takes an instance only while the sum of its
    # instances' vCPUs and memory stays within its figures times the overcommits above
    # (reservations). Off by default: on one host limits are caps, not reservations, and
    # placement then only weighs (free memory, spread) among hosts the type fits.
    placement_reserves: bool = field(
        default_factory=lambda: _env("GUREUM_PLACEMENT_RESERVES", "0") == "1")
    # The UDP port of VPC segments between hosts (VXLAN): IANA's 4789. Every host of a
    # cloud uses the control plane's (it travels in each segment).
    vxlan_port: int = field(default_factory=lambda: int(_env("GUREUM_VXLAN_PORT", "4789")))
    max_instances_per_account: int = field(
        default_factory=lambda: int(_env("GUREUM_MAX_INSTANCES", "256"))
    )
    # Per-account API rate (requests/second) and burst; 0 turns throttling off.
    rate_limit: float = field(default_factory=lambda: float(_env("GUREUM_RATE_LIMIT", "200")))
    rate_burst: float = field(default_factory=lambda: float(_env("GUREUM_RATE_BURST", "400")))
    # EBS: the volume store's size (a sparse XFS file: only what is written takes host
    # disk), each account's quota of provisioned GiB (VolumeLimitExceeded beyond it) and
    # the data volumes one instance may have attached (AttachmentLimitExceeded).
    volume_store_gib: int = field(default_factory=lambda: int(_env("GUREUM_VOLUME_STORE_GIB", "1024")))
    volume_quota_gib: int = field(default_factory=lambda: int(_env("GUREUM_VOLUME_QUOTA_GIB", "5120")))
    max_attachments: int = field(default_factory=lambda: int(_env("GUREUM_MAX_ATTACHMENTS", "16")))
    # Each volume's disk I/O limit is its EBS type's rate (gp3: 3,000 IOPS, 125 MiB/s)
    # times this: the host's disk against an EBS volume's. 0 leaves disks unthrottled.
    ebs_io_scale: float = field(default_factory=lambda: float(_env("GUREUM_EBS_IO_SCALE", "1")))
    terminated_visible_seconds: int = field(
        default_factory=lambda: int(_env("GUREUM_TERMINATED_TTL", "3600"))
    )

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        for cidr in (self.vpc_cidr, self.subnet_cidr, self.public_pool):
            ipaddress.ip_network(cidr)
        on_loopback = ipaddress.ip_network(self.public_pool).subnet_of(
            ipaddress.ip_network("127.0.0.0/8"))
        if not on_loopback and not self.public_interface:
            # A pool outside loopback needs an interface it answers on; without one, refuse
            # rather than send packets for it anywhere.
            raise ValueError("a public pool outside 127.0.0.0/8 needs GUREUM_PUBLIC_INTERFACE")
        if on_loopback and self.public_interface:
            raise ValueError("GUREUM_PUBLIC_INTERFACE needs a public pool outside loopback")

    @property
    def prefix(self) -> str:
        """Name prefix of every host object this data directory makes (6 chars, fits IFNAMSIZ)."""
        return "gr" + hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:4]

    @property
    def api_over_tls(self) -> bool:
        """Whether the API listener speaks HTTPS: always beyond loopback."""
        return self.api_tls == "1" or (self.api_tls != "0" and not is_loopback(self.host))

    @property
    def api_name_list(self) -> list[str]:
        return [n.strip() for n in self.api_names.split(",") if n.strip()]

    @property
    def endpoint_host(self) -> str:
        """The host part of the endpoint URL: a wildcard listen address is reached by the
        first of GUREUM_API_NAMES, else the host's name."""
        host = self.host
        if host in WILDCARD_HOSTS:
            host = (self.api_name_list or [socket.gethostname()])[0]
        return f"[{host}]" if ":" in host else host

    @property
    def endpoint(self) -> str:
        """The URL clients use: https when the listener speaks TLS."""
        return f"{'https' if self.api_over_tls else 'http'}://{self.endpoint_host}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "gureum.db"

    @property
    def store_url(self) -> str:
        """SQLAlchemy's URL of the state: GUREUM_DATABASE_URL, else SQLite in the data dir."""
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def instances_dir(self) -> Path:
        return self.data_dir / "instances"

    @property
    def agent_token_path(self) -> Path:
        """The secret a separate `gureum agent` demands of its callers."""
        return self.data_dir / "agent.token"

    @property
    def runc_root(self) -> Path:
        return self.data_dir / "runc"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; any other name or address counts as a network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_memory_mib() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 1024
