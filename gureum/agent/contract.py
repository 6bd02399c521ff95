"""The host agent contract: every call the control plane may make on a host, and every
type that crosses it.

Three things implement it: `HostAgent` (the real one, in-process or behind `gureum
agent`), `RemoteAgent` (the same calls over a socket) and `FakeAgent` (state in memory,
for the fast test tier). The method list of the remote server and client, and how their
arguments and results travel, are derived from the signatures below, never repeated.

Rules every implementation keeps (after Nova's virt driver):
- every operation is idempotent: `launch` of a running instance, `stop` of a stopped one
  and `destroy` of an absent one succeed and change nothing;
- a failed multi-step operation leaves nothing half-made (an exit stack per operation);
- failures raise `HostError` subclasses from `gureum.errors`; `AgentUnavailable` means
  the agent could not be reached and says nothing about the instance.
"""

from __future__ import annotations

import abc
import inspect
import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

# -- types that cross the contract ------------------------------------------------------


class RuntimeState(StrEnum):
    ABSENT = "absent"
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Limits:
    vcpus: int
    memory_mib: int
    pids: int


@dataclass(frozen=True)
class IoLimits:
    """What one disk of an instance may do, per direction (read and write each), as the
    block layer counts it: its EBS volume type's baseline scaled to the host."""

    iops: int
    bytes_per_second: int


@dataclass(frozen=True)
class PeeringRoute:
    destination: str  # a CIDR some route tables send to the peering
    sources: tuple[str, ...]  # the subnets whose route table does


@dataclass(frozen=True)
class PeeringLink:
    """An active VPC peering seen from one side: a veth pair between the two routers."""

    peering_id: str
    peer_vpc_id: str
    peer_cidr: str
    requester: bool  # which end of the link's address pair is this side's
    # The only traffic this side lets into the link, replies included.
    routes: tuple[PeeringRoute, ...] = ()


@dataclass(frozen=True)
class PolicyRoute:
    """A route of some subnets' route table that the router's main table cannot express:
    its target is an address inside the VPC (a network interface, a NAT gateway), or it
    must win over such a route by being more specific. Applied as `ip rule`s in the
    router, longest destination first, for packets from `sources` arriving on the bridge."""

    destination: str
    sources: tuple[str, ...]  # subnet CIDRs whose route table holds the route
    via: str = ""  # "": the router's main table; an address on the bridge; "blackhole"
    snat: str = ""  # a NAT gateway's: what sources leaving by the uplink become


@dataclass(frozen=True)
class VpcNetwork:
    """What the host builds for one VPC."""

    vpc_id: str
    index: int  # unique per data directory: names the uplink and the mark
    cidr: str
    subnets: tuple[str, ...]
    internet_subnets: tuple[str, ...] = ()  # may reach out, if the operator allows it
    peerings: tuple[PeeringLink, ...] = ()
    policy_routes: tuple[PolicyRoute, ...] = ()
    secondary_cidrs: tuple[str, ...] = ()  # AssociateVpcCidrBlock's, routed like `cidr`
    # Its subnets' IPv6 /64s: the router holds each one's first address (::1) on its
    # bridge and forwards IPv6 between them (inside the VPC only).
    ipv6_subnets: tuple[str, ...] = ()
    # Those whose route table sends IPv6 beyond the VPC to a gateway (egress-only or
    # internet): routed to the uplink, where it is dropped (no IPv6 path off the router).
    ipv6_egress_subnets: tuple[str, ...] = ()

    @property
    def resolver(self) -> str:
        """The VPC's +2 address, where AWS puts the Amazon-provided DNS server."""
        return str(ipaddress.ip_network(self.cidr)[2])


@dataclass(frozen=True)
class GuestDns:
    """What a VPC's DHCP options tell its instances about DNS: /etc/resolv.conf."""

    search: tuple[str, ...] = ()
    nameservers: tuple[str, ...] = ()

    def resolv_conf(self) -> str:
        lines = ["# written by gureum from the VPC's DHCP options set"]
        if self.search:
            lines.append("search " + " ".join(self.search))
        lines += [f"nameserver {server}" for server in self.nameservers]
        if self.nameservers:
            lines.append("options timeout:1")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FirewallRule:
    protocol: str  # "-1" (all), "tcp", "udp", "icmp" or an IP protocol number
    from_port: int  # for icmp: the type (-1 = all)
    to_port: int  # for icmp: the code (-1 = all)
    peers: tuple[str, ...]  # CIDRs; empty means the rule matches nothing (yet)


@dataclass(frozen=True)
class InterfaceFirewall:
    """The security groups of one interface beyond eth0 (an attached network interface):
    traffic in on `device` and out by it follows these rules."""

    device: str  # ethN inside the instance
    ingress: tuple[FirewallRule, ...]
    egress: tuple[FirewallRule, ...]


@dataclass(frozen=True)
class Firewall:
    ingress: tuple[FirewallRule, ...]  # eth0's (all traffic when `interfaces` is empty)
    egress: tuple[FirewallRule, ...]
    resolver: str | None = None  # the VPC's DNS address, reachable whatever the rules say
    interfaces: tuple[InterfaceFirewall, ...] = ()


@dataclass(frozen=True)
class NetworkInterfaceSpec:
    """An attached network interface at device index 1+: `eth<device_index>` inside the
    instance, its own cable into the VPC bridge, its addresses (primary first)."""

    device_index: int
    subnet_cidr: str
    addresses: tuple[str, ...]
    # Off: the instance may send from addresses not its own and forwards for others
    # (its port leaves the anti-spoof set's control; its netns forwards).
    source_dest_check: bool = True
    ipv6_addresses: tuple[str, ...] = ()  # in its subnet's IPv6 /64
    subnet_ipv6_cidr: str = ""


@dataclass(frozen=True)
class VolumeAttachment:
    volume_id: str
    device: str  # as the API names it: /dev/sdf, /dev/xvdg
    io: IoLimits | None = None  # None: unthrottled


@dataclass(frozen=True)
class StoredChunk:
    """A piece of a volume's or snapshot's file on its way to another host: `data` found
    at `offset` of a file of `size` bytes; `end` when nothing follows (holes are skipped:
    the files are sparse)."""
    data: bytes
    offset: int
    size: int
    end: bool


@dataclass(frozen=True)
class SnapshotRequest:
    volume_id: str
    snapshot_id: str


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a host needs to run one instance."""

    instance_id: str
    slot: int
    vpc: VpcNetwork
    subnet_cidr: str
    private_ip: str
    public_ip: str | None  # only when the subnet routes to an attached internet gateway
    hostname: str
    limits: Limits
    volume_gib: int
    image_root: Path
    authorized_key: str | None
    user_data: bytes | None = None
    firewall: Firewall | None = None
    # The root disk is a volume of the volume store (None: an instance made before EBS,
    # whose disk is still the instance directory's disk.img).
    root_volume_id: str | None = None
    volumes: tuple[VolumeAttachment, ...] = ()  # data volumes, mounted at every start
    init_system: str = "tini"  # the image's: "tini" (gureum's boot script) or "systemd"
    # /etc/resolv.conf, written at every boot (None: the VPC's resolver, at first boot only).
    dns: GuestDns | None = None
    secondary_ips: tuple[str, ...] = ()  # eth0's secondary private addresses
    interfaces: tuple[NetworkInterfaceSpec, ...] = ()  # attached at device index 1+
    root_io: IoLimits | None = None  # the root disk's (None: unthrottled)
    source_dest_check: bool = True  # eth0's (see NetworkInterfaceSpec)
    ipv6_addresses: tuple[str, ...] = ()  # eth0's, in its subnet's IPv6 /64
    subnet_ipv6_cidr: str = ""  # the subnet's IPv6 /64 ("": IPv4 only)


# public address -> [private address, VPC index]
PublicMap = dict[str, list[Any]]


@dataclass(frozen=True)
class HealthCheck:
    protocol: str  # HTTP | HTTPS | TCP
    port: int | None  # None: the target's own port
    path: str | None
    interval: int
    timeout: int
    healthy: int
    unhealthy: int
    matcher: str | None  # AWS's HttpCode: "200", "200-299", "200,302"


@dataclass(frozen=True)
class Server:
    name: str  # names the target in health reports: "<target id>_<port>"
    address: str
    port: int
    draining: bool = False  # no new requests; in-flight ones finish


@dataclass(frozen=True)
class Backend:
    name: str  # the target group's id
    protocol: str  # HTTP | TCP
    algorithm: str  # round_robin | least_outstanding_requests
    health: HealthCheck
    servers: tuple[Server, ...]
    sticky_seconds: int = 0  # lb_cookie stickiness (AWSALB cookie), 0 = off
    slow_start: int = 0  # seconds a new server ramps up its share


@dataclass(frozen=True)
class Route:
    """What a listener (or one of its rules) does with a request."""

    kind: str  # forward | fixed-response | redirect
    backends: tuple[tuple[str, int], ...] = ()  # (backend name, weight)
    status: int | None = None  # fixed-response and redirect status
    content_type: str | None = None
    body: str | None = None
    location: tuple[str, str, str, str, str] | None = None  # protocol, host, port, path, query


@dataclass(frozen=True)
class Condition:
    """One rule condition; its values match in any order (OR); a rule's conditions all
    must match (AND). Patterns use AWS's wildcards (* and ?)."""

    field: str  # path-pattern | host-header | http-header | http-request-method |
    #             query-string | source-ip
    values: tuple[str, ...] = ()
    header: str | None = None  # http-header
    pairs: tuple[tuple[str, str], ...] = ()  # query-string: (key or "", value)


@dataclass(frozen=True)
class Rule:
    priority: int
    conditions: tuple[Condition, ...]
    route: Route


@dataclass(frozen=True)
class Frontend:
    port: int
    protocol: str  # HTTP | TCP
    default: Route
    rules: tuple[Rule, ...] = ()  # by priority, lowest first
    pem: str | None = None  # HTTPS: certificate, chain and private key
    # HTTPS: further certificates (same form), chosen by the name the client asks for (SNI)
    sni_pems: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadBalancerSpec:
    """One load balancer's data plane: its own interface in the VPC (like an instance's)
    and a proxy serving its listeners."""

    lb_id: str
    vpc: VpcNetwork
    slot: int
    subnet_cidr: str
    private_ip: str
    public_ip: str | None
    mode: str  # http (application) | tcp (network)
    idle_timeout: int
    firewall: Firewall | None
    frontends: tuple[Frontend, ...]
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class IdentityDocument:
    """The instance identity document and its signatures, made where the signing key
    lives (the control plane): the host serves them as they are."""

    document: str  # JSON, EC2's layout
    signature: str  # base64 RSA-SHA256, as /signature answers
    pkcs7: str  # base64 detached PKCS#7, as /pkcs7 and /rsa2048 answer


@dataclass(frozen=True)
class InstanceMetadata:
    """What the metadata service tells one instance. The host resolves request paths
    against this data; it never asks the control plane."""

    instance_id: str
    http_tokens: str  # "optional" | "required"
    hop_limit: int  # TTL of the token answer's packets
    endpoint_enabled: bool  # False: every request is 403
    tree: dict[str, Any]  # meta-data/: a dict is a directory, anything else a file
    identity: IdentityDocument
    user_data: bytes | None = None
    key_name: str | None = None  # meta-data/public-keys/ lists "0=<key name>"


# (name, type, value), e.g. ("ip-10-0-1-5.gureum-1.compute.internal", "A", "10.0.1.5")
DnsRecord = tuple[str, str, str]


@dataclass(frozen=True)
class VpcServices:
    """Everything a VPC's DNS resolver and metadata service answer, pushed whole by the
    control plane whenever it changes; the host keeps the latest (also across its own
    restarts) and answers from it alone."""

    vpc: VpcNetwork
    instances: dict[str, InstanceMetadata]  # private address -> metadata; also who may ask DNS
    dns_support: bool  # the VPC's EnableDnsSupport: off, every query is refused
    zones: tuple[str, ...]  # names under these are answered here: absent means NXDOMAIN
    records: tuple[DnsRecord, ...]
    forward_for: tuple[str, ...] = ()  # callers whose other queries go to the host's resolvers


@dataclass(frozen=True)
class SegmentPeer:
    """One interface of an instance of the VPC on another host: frames for its MAC go
    through the tunnel to that host, and ARP (IPv4) or neighbour solicitations (IPv6) for
    its addresses are answered locally."""

    mac: str
    addresses: tuple[str, ...]  # IPv4 and IPv6
    host_address: str  # the underlay (tunnel) address of the host holding it


@dataclass(frozen=True)
class VxlanSegment:
    """A VPC's VXLAN segment as one host sees it: the VNI (the same on every host of the
    cloud), the UDP port, this host's own underlay address and every remote interface of
    the VPC. No peers: the VPC does not span this host and another, and no device is kept."""

    vni: int
    port: int
    local_address: str
    peers: tuple[SegmentPeer, ...] = ()

    @property
    def remote_hosts(self) -> tuple[str, ...]:
        return tuple(sorted({p.host_address for p in self.peers}))


# backend name -> server name -> [state UP|DOWN|MAINT|INIT, last check status (L7STS, ...)]
HealthReport = dict[str, dict[str, list[str]]]


# -- the contract ---------------------------------------------------------------------------


class AgentContract(abc.ABC):
    """What one host does for the control plane. See the module docstring for the rules."""

    # host-wide
    @abc.abstractmethod
    def ensure_host_network(self) -> bool:
        """The host's own tables and guards; True when they had to be remade."""

    @abc.abstractmethod
    def remove_host_network(self) -> None: ...

    @abc.abstractmethod
    def remove_cgroup_parents(self) -> None: ...

    @abc.abstractmethod
    def host_objects(self) -> dict[str, list[str]]:
        """Every host object this data directory owns, by kind (empty lists when clean)."""

    # VPCs and public addresses
    @abc.abstractmethod
    def ensure_vpc(self, vpc: VpcNetwork) -> None:
        """The VPC's router, current with `vpc` (subnets, egress)."""

    @abc.abstractmethod
    def remove_vpc(self, vpc_id: str) -> None:
        """The router goes, with its listeners and what they were given to serve."""

    @abc.abstractmethod
    def serve_vpc(self, services: VpcServices) -> None:
        """The VPC's router, its DNS resolver and metadata service answering exactly from
        `services` (replacing what was served before), kept across the agent's restarts."""

    @abc.abstractmethod
    def serve_instance(self, vpc_id: str, private_ip: str, metadata: InstanceMetadata) -> None:
        """One instance's metadata added to (or replaced in) what a served VPC answers,
        kept like the rest: a launch needs its own before first boot, and pushing the whole
        VPC grows with its size. The next `serve_vpc` replaces everything. A VPC not served
        yet: `HostError`."""

    @abc.abstractmethod
    def vpc_routers(self) -> list[str]:
        """Ids of the VPCs whose router exists on this host."""

    @abc.abstractmethod
    def sync_vpc_peers(self, vpc: VpcNetwork, segment: VxlanSegment) -> None:
        """The VPC's VXLAN device on this host attached to its router's bridge with exactly
        `segment`'s forwarding and neighbour entries (no learning, no flooding), and only
        its peer hosts let in on its VNI; the router is built first. No peers: the
        device goes (a VPC without a router here needs nothing)."""

    @abc.abstractmethod
    def sync_public_ips(self, wanted: PublicMap) -> None:
        """Make the host's public-address map exactly `wanted`."""

    # instances
    @abc.abstractmethod
    def launch(self, spec: InstanceSpec) -> None:
        """Make the instance run (disk, network, process); a running one is re-plumbed."""

    @abc.abstractmethod
    def stop(self, spec: InstanceSpec, force: bool) -> None:
        """Everything but the disk goes."""

    @abc.abstractmethod
    def reboot(self, spec: InstanceSpec) -> None: ...

    @abc.abstractmethod
    def destroy(self, spec: InstanceSpec) -> None:
        """Terminate: nothing of the instance remains, its disk included."""

    @abc.abstractmethod
    def status(self, spec: InstanceSpec) -> RuntimeState: ...

    @abc.abstractmethod
    def ssh_ready(self, spec: InstanceSpec) -> bool:
        """Something listens on TCP 22 inside the instance."""

    @abc.abstractmethod
    def alive(self, instance_id: str) -> bool:
        """Cheap liveness of the instance's init, called often."""

    @abc.abstractmethod
    def halt_reason(self, instance_id: str) -> str:
        """After the instance's init ended by itself: "reboot" when its guest asked for a
        reboot (the systemd image says so), else what it said or ""."""

    @abc.abstractmethod
    def instances(self) -> dict[str, RuntimeState]:
        """Every instance with anything on this host (runtime object, disk, netns), and
        the state of its runtime object (ABSENT when only leftovers remain)."""

    @abc.abstractmethod
    def sweep(self, instance_ids: list[str]) -> list[str]:
        """Remove everything these instances have on this host, disks included (no row
        owns them any more); returns the ids that had something to remove."""

    @abc.abstractmethod
    def apply_firewalls(self, firewalls: dict[str, Firewall]) -> dict[str, str]:
        """Running instances' security groups (instance id -> firewall), each replacing
        what its instance had, in one call: a change to a group's members rewrites every
        member's. Returns the instances it could not write (id -> "ErrorClass: message",
        e.g. `NetnsMissing` for an instance not on this host); the others are written."""

    @abc.abstractmethod
    def sync_interfaces(self, spec: InstanceSpec) -> None:
        """A running instance's interfaces become the spec's: eth0's secondary addresses,
        one ethN per `spec.interfaces` entry (cable, addresses, routes that send each
        address's replies out by its own interface, anti-spoof entries), no other ethN.
        Idempotent; done by `launch` too."""

    @abc.abstractmethod
    def interface_addresses(self, instance_id: str) -> dict[str, list[str]]:
        """What a running instance has: device -> its IPv4 addresses ({}: not running)."""

    @abc.abstractmethod
    def configure_dns(self, instance_id: str, slot: int, dns: GuestDns) -> None:
        """A running instance's /etc/resolv.conf says `dns` now (what a DHCP renewal
        does on EC2, pushed instead of waited for)."""

    @abc.abstractmethod
    def counters(self, instance_ids: list[str]) -> dict[str, list[float]]:
        """Cumulative counters of running instances, for metrics: [CPU seconds used,
        bytes in, bytes out, packets in, packets out, disk bytes read, disk bytes written,
        disk read ops, disk write ops] (absent: not running here)."""

    # load balancers
    @abc.abstractmethod
    def ensure_load_balancer(self, spec: LoadBalancerSpec) -> None:
        """Its interface, firewall and proxy running with exactly this configuration;
        a changed configuration is applied without dropping a connection."""

    @abc.abstractmethod
    def remove_load_balancer(self, lb_id: str) -> None:
        """Its proxy, interface and files go (known from what the host recorded)."""

    @abc.abstractmethod
    def load_balancers(self) -> dict[str, bool]:
        """Every load balancer on this host, and whether its proxy is running."""

    @abc.abstractmethod
    def refresh_load_balancer(self, lb_id: str) -> None:
        """Follow what changed since its last `ensure`: health (a network load balancer
        forwards only to healthy targets) and settled run-time server changes."""

    @abc.abstractmethod
    def lb_stats(self, lb_id: str) -> dict[str, float]:
        """The load balancer's traffic as CloudWatch names it: counters since its proxy
        started (RequestCount, ProcessedBytes, HTTPCode_Target_NXX_Count, and
        RequestCount/<backend> per target group's backend) and gauges
        (ActiveConnectionCount, TargetResponseTime in seconds)."""

    @abc.abstractmethod
    def publish_ports(self, wanted: dict[str, list[Any]]) -> None:
        """Listeners published on the host's own address, exactly these: port (as a
        string) -> [load balancer address, its port, VPC index]."""

    @abc.abstractmethod
    def host_port_in_use(self, port: int) -> bool:
        """Whether something on the host listens on this port of the publish address."""

    @abc.abstractmethod
    def target_health(self, lb_id: str) -> HealthReport:
        """What the proxy's own health checks say of each server."""

    # -- EBS -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_volume(self, volume_id: str, size_gib: int, snapshot_id: str | None) -> None:
        """A fresh formatted volume, or a copy of a snapshot (shares its blocks).
        Idempotent."""

    @abc.abstractmethod
    def delete_volume(self, volume_id: str) -> None:
        """The volume's data goes (idempotent). Never called for an attached volume."""

    @abc.abstractmethod
    def grow_volume(self, volume_id: str, size_gib: int) -> None:
        """Larger; an attached volume's filesystem grows online."""

    @abc.abstractmethod
    def attach_volume(self, instance_id: str, slot: int, attachment: VolumeAttachment) -> None:
        """Visible inside the running instance (idempotent). VolumeHeld while a forced
        detach elsewhere has not let go."""

    @abc.abstractmethod
    def detach_volume(self, instance_id: str, attachment: VolumeAttachment, force: bool) -> None:
        """Flushed and gone from the instance (idempotent). VolumeBusy when in use there
        and not `force`."""

    @abc.abstractmethod
    def snapshot_volumes(self, requests: list[SnapshotRequest]) -> None:
        """Point-in-time copies of the volumes, taken at one instant (idempotent)."""

    @abc.abstractmethod
    def delete_snapshot(self, snapshot_id: str) -> None: ...

    @abc.abstractmethod
    def read_stored(self, name: str, offset: int, length: int) -> StoredChunk:
        """The next data (at most `length` bytes) at or after `offset` of a volume's or a
        snapshot's file (`name` is its id), to move it to another host. Never called for a
        volume in use."""

    @abc.abstractmethod
    def write_stored(self, name: str, chunk: StoredChunk, first: bool) -> None:
        """Receives what another host's `read_stored` gave: `first` starts the file over
        (a whole move is retried from its start), `chunk.end` puts it in place."""

    @abc.abstractmethod
    def adopt_root_disk(self, volume_id: str, slot: int) -> None:
        """A stopped instance's root disk moved here from another host (a drain) becomes
        this host's for `slot` before its next launch. Idempotent."""

    @abc.abstractmethod
    def build_image(self, image_id: str, snapshot_id: str, parent_root: str | None) -> str:
        """An image root from a snapshot: a root disk's changes over `parent_root`, or a
        whole filesystem. Returns the root's path. Idempotent."""

    @abc.abstractmethod
    def delete_image(self, image_id: str) -> None:
        """An image root made by build_image goes (idempotent)."""

    @abc.abstractmethod
    def console_tail(self, instance_id: str, nbytes: int) -> bytes: ...

    @abc.abstractmethod
    def trim_console(self, instance_id: str) -> None:
        """Bound the console log kept on the host."""


METHODS: dict[str, inspect.Signature] = {
    name: inspect.signature(fn) for name, fn in vars(AgentContract).items()
    if getattr(fn, "__isabstractmethod__", False)
}


def hints(method: str) -> dict[str, Any]:
    """Resolved parameter and return types of one contract method."""
    return get_type_hints(getattr(AgentContract, method))
