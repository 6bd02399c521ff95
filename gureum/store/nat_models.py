"""NAT gateways and VPCs' secondary IPv4 CIDR blocks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow


class NatGateway(Base):
    """A NAT gateway: an interface in its subnet (`eni_id`, type nat_gateway) and, when
    public, an Elastic IP its subnets' traffic leaves as. States as AWS's: pending ->
    available (the network controller moves it once the router has it) -> deleting ->
    deleted (the row stays, described for a while as on AWS)."""

    __tablename__ = "nat_gateways"
    nat_gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    vpc_id: Mapped[str] = mapped_column(String(32), index=True)
    subnet_id: Mapped[str] = mapped_column(String(32), index=True)
    connectivity_type: Mapped[str] = mapped_column(String(8), default="public")
    allocation_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    eni_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    private_ip: Mapped[str] = mapped_column(String(15))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class VpcCidrBlock(Base):
    """A secondary IPv4 CIDR block of a VPC (the primary one stays `vpcs.cidr`)."""

    __tablename__ = "vpc_cidr_blocks"
    association_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.vpc_id"), index=True)
    cidr: Mapped[str] = mapped_column(String(18))
    # associated, or disassociated (kept briefly in AWS; here the row goes at once)
    state: Mapped[str] = mapped_column(String(16), default="associated")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
