"""VPC-wide options that other resources refer to: DHCP options sets (what a VPC's
instances are told about DNS) and managed prefix lists (named CIDR sets that
security-group rules use), and peering connections between VPCs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow


class DhcpOptions(Base):
    __tablename__ = "dhcp_options"
    dhcp_options_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    # {key: [values]} as given, keys as AWS names them ("domain-name-servers", ...).
    configurations: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ManagedPrefixList(Base):
    __tablename__ = "managed_prefix_lists"
    prefix_list_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    address_family: Mapped[str] = mapped_column(String(8), default="IPv4")
    max_entries: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class PrefixListVersion(Base):
    """Every version's entries ([{"Cidr", "Description"}]): the list's current one is what
    rules allow; older ones answer GetManagedPrefixListEntries(TargetVersion)."""

    __tablename__ = "prefix_list_versions"
    prefix_list_id: Mapped[str] = mapped_column(
        ForeignKey("managed_prefix_lists.prefix_list_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class VpcPeeringConnection(Base):
    """A peering between two VPCs (of one account or two). Once active, each VPC's route
    tables may send the other's addresses to it (`routes.gateway_id` = its id)."""

    __tablename__ = "vpc_peering_connections"
    peering_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    requester_vpc_id: Mapped[str] = mapped_column(String(32), index=True)
    requester_cidr: Mapped[str] = mapped_column(String(18))
    accepter_account_id: Mapped[str] = mapped_column(String(12), index=True)
    accepter_vpc_id: Mapped[str] = mapped_column(String(32), index=True)
    accepter_cidr: Mapped[str] = mapped_column(String(18))
    # AWS's status codes: pending-acceptance, active, rejected, deleted, failed, expired.
    status: Mapped[str] = mapped_column(String(24))
    status_message: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
