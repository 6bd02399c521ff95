"""SQLAlchemy 2 models: the desired and observed state of the cloud.

Schema changes go through Alembic (gureum/store/migrations); SQLite is the embedded
store, PostgreSQL the one for many hosts, through these same models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """Timestamps stored naive-UTC (SQLite has no zones) and read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None else None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AccessKey(Base):
    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_access_key: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    key_pair_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    key_type: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Image(Base):
    __tablename__ = "images"
    image_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    owner_id: Mapped[str] = mapped_column(String(12))
    owner_alias: Mapped[str | None] = mapped_column(String(32), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rootfs: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="available")
    public: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Images of accounts (CreateImage, RegisterImage, CopyImage, import); NULL: built in.
    account_id: Mapped[str | None] = mapped_column(String(12), nullable=True, index=True)
    # launchPermission: account ids allowed besides the owner ("all" is `public`).
    shared_with: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # The root snapshot a pending image is built from; the instance it was made of.
    root_snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    root_size_gib: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    # Data volumes its instances start with: [{"DeviceName", "SnapshotId", "VolumeSize",
    # "VolumeType", "DeleteOnTermination"}] (CreateImage of an instance with volumes).
    data_mappings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list,
                                                                 server_default="[]")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What runs as PID 1 of its instances: "tini" (gureum's boot script) or "systemd".
    init_system: Mapped[str] = mapped_column(String(16), default="tini", server_default="tini")


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("account_id", "client_token"),)
    reservation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


# Failed attempts in a row after which an instance's status is impaired
# (DescribeInstanceStatus); the controller keeps trying, at its backoff's cap.
IMPAIRED_AFTER = 5


class Instance(Base):
    __tablename__ = "instances"
    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.reservation_id"))
    ami_launch_index: Mapped[int] = mapped_column(Integer, default=0)
    image_id: Mapped[str] = mapped_column(String(32))
    instance_type: Mapped[str] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    authorized_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Observed state, as the API reports it, and what the last acknowledged call asked for.
    state: Mapped[str] = mapped_column(String(16), index=True)
    desired_state: Mapped[str] = mapped_column(String(16))
    state_reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state_reason_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_transition_reason: Mapped[str] = mapped_column(Text, default="")
    reboot_requested: Mapped[int] = mapped_column(Integer, default=0)
    reboot_done: Mapped[int] = mapped_column(Integer, default=0)
    force_stop: Mapped[bool] = mapped_column(default=False)
    disable_api_termination: Mapped[bool] = mapped_column(default=False)
    # Whether the instance gets an auto-assigned public IP at launch and at each start.
    assign_public_ip: Mapped[bool] = mapped_column(default=True, server_default="1")
    slot: Mapped[int] = mapped_column(Integer)
    private_ip: Mapped[str] = mapped_column(String(15))
    public_ip: Mapped[str | None] = mapped_column(String(15), nullable=True)
    vpc_id: Mapped[str] = mapped_column(String(32))
    subnet_id: Mapped[str] = mapped_column(String(32))
    availability_zone: Mapped[str] = mapped_column(String(32))
    # The host it runs on (placement at RunInstances; None: the control host, as before).
    host_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    placement_group_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    security_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    volume_gib: Mapped[int] = mapped_column(Integer, default=8)
    user_data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    metadata_options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    launch_time: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    state_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the controller may try this instance's pending work again (exponential backoff).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)

    def transition(self, new_state: str, desired: str | None = None) -> None:
        """Enter a state: the one place that also resets the retry bookkeeping."""
        self.state = new_state
        if desired is not None:
            self.desired_state = desired
        self.state_changed_at = utcnow()
        self.attempts = 0
        self.last_error = None
        self.next_attempt_at = None


class Tag(Base):
    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    resource_type: Mapped[str] = mapped_column(String(32))


class SecurityGroup(Base):
    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("account_id", "vpc_id", "name"),)
    group_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"
    rule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.group_id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    is_egress: Mapped[bool] = mapped_column(default=False)
    # "-1" (all), "tcp", "udp", "icmp"; ports are -1 when they do not apply.
    protocol: Mapped[str] = mapped_column(String(8))
    from_port: Mapped[int] = mapped_column(Integer, default=-1)
    to_port: Mapped[int] = mapped_column(Integer, default=-1)
    cidr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ref_group_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # A managed prefix list: the rule allows its current entries, whatever they become.
    prefix_list_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class Address(Base):
    """An Elastic IP: a public address an account holds until it releases it."""

    __tablename__ = "addresses"
    allocation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    public_ip: Mapped[str] = mapped_column(String(15), unique=True)
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    association_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The interface and private address it maps to (AssociateAddress NetworkInterfaceId,
    # PrivateIpAddress); NULL with an instance: its primary interface's primary address.
    eni_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    private_ip: Mapped[str | None] = mapped_column(String(15), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Vpc(Base):
    """A VPC: its own L2/L3 domain on the host (a router netns holding its bridge).
    `net_index` names its host objects and its routing mark; unique per data directory."""

    __tablename__ = "vpcs"
    vpc_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    cidr: Mapped[str] = mapped_column(String(18))
    is_default: Mapped[bool] = mapped_column(default=False)
    net_index: Mapped[int] = mapped_column(Integer, unique=True)
    enable_dns_support: Mapped[bool] = mapped_column(default=True, server_default="1")
    enable_dns_hostnames: Mapped[bool] = mapped_column(default=False, server_default="0")
    # Its DHCP options set; NULL: the account's default set, "default": none at all.
    dhcp_options_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Its Amazon-provided IPv6 /56 (from GUREUM_IPV6_POOL, unique in the cloud) and the
    # block's association id; NULL: IPv4 only.
    ipv6_cidr: Mapped[str | None] = mapped_column(String(43), nullable=True, unique=True)
    ipv6_association_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Subnet(Base):
    __tablename__ = "subnets"
    subnet_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.vpc_id"), index=True)
    cidr: Mapped[str] = mapped_column(String(18))
    availability_zone: Mapped[str] = mapped_column(String(32))
    default_for_az: Mapped[bool] = mapped_column(default=False)
    map_public_ip_on_launch: Mapped[bool] = mapped_column(default=False)
    # Its IPv6 /64 inside the VPC's /56 and that block's association id; NULL: none.
    ipv6_cidr: Mapped[str | None] = mapped_column(String(43), nullable=True)
    ipv6_association_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    assign_ipv6_on_creation: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class InternetGateway(Base):
    __tablename__ = "internet_gateways"
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class EgressOnlyInternetGateway(Base):
    """An egress-only internet gateway: attached to its VPC from birth to deletion, the
    target of IPv6 routes (::/0) whose connections may only start inside."""

    __tablename__ = "egress_only_internet_gateways"
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RouteTable(Base):
    __tablename__ = "route_tables"
    route_table_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.vpc_id"), index=True)
    is_main: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Route(Base):
    """A route other than the implicit `local` one of its VPC's CIDR."""

    __tablename__ = "routes"
    route_table_id: Mapped[str] = mapped_column(ForeignKey("route_tables.route_table_id"),
                                                primary_key=True)
    destination: Mapped[str] = mapped_column(String(43), primary_key=True)  # IPv4 or IPv6
    gateway_id: Mapped[str] = mapped_column(String(32))


class RouteTableAssociation(Base):
    __tablename__ = "route_table_associations"
    association_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    route_table_id: Mapped[str] = mapped_column(ForeignKey("route_tables.route_table_id"),
                                                index=True)
    subnet_id: Mapped[str] = mapped_column(String(32), unique=True)



class NetworkInterface(Base):
    """An elastic network interface. Every instance has one at device index 0 (made and,
    with DeleteOnTermination, deleted with it, id derived from the instance's); others are
    made by CreateNetworkInterface and attached at index 1+. The instance row keeps its
    primary interface's address and groups too (the host plumbing reads them there)."""

    __tablename__ = "network_interfaces"
    eni_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str] = mapped_column(String(32), index=True)
    subnet_id: Mapped[str] = mapped_column(String(32), index=True)
    availability_zone: Mapped[str] = mapped_column(String(32))
    private_ip: Mapped[str] = mapped_column(String(15))
    # Secondary private addresses, in the order they were assigned.
    secondary_ips: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # IPv6 addresses (in its subnet's /64), in the order they were assigned.
    ipv6_addresses: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    security_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(255), default="", server_default="")
    source_dest_check: Mapped[bool] = mapped_column(default=True, server_default=true())
    mac_address: Mapped[str] = mapped_column(String(17))
    # "available" or "in-use" (attached).
    status: Mapped[str] = mapped_column(String(16), default="available")
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    device_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attachment_id: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    attach_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(default=False, server_default=false())
    # "interface", or "nat_gateway" for a NAT gateway's (never attached to an instance)
    interface_type: Mapped[str] = mapped_column(String(24), default="interface",
                                                server_default="interface")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    def addresses(self) -> list[str]:
        return [self.private_ip, *self.secondary_ips]


class LaunchTemplate(Base):
    __tablename__ = "launch_templates"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    template_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    default_version: Mapped[int] = mapped_column(Integer, default=1)
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class LaunchTemplateVersion(Base):
    __tablename__ = "launch_template_versions"
    template_id: Mapped[str] = mapped_column(ForeignKey("launch_templates.template_id"),
                                             primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # RunInstances-shaped parameters (botocore member names), as the caller gave them.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

# Other services' tables share this metadata (one schema, one migration history).
from gureum.store import (  # noqa: E402, F401
    acm_models,
    autoscaling_models,
    cloudwatch_models,
    ebs_models,
    elbv2_models,
    host_models,
    nat_models,
    vpc_options_models,
)
