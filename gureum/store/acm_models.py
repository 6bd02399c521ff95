"""AWS Certificate Manager: imported certificates (with their private keys, which stay in
the data directory and go only to this host's load balancers)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gureum.store.models import Base, UtcDateTime, utcnow


class Certificate(Base):
    __tablename__ = "certificates"
    arn: Mapped[str] = mapped_column(String(512), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    domain_name: Mapped[str] = mapped_column(String(255))
    alternative_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    certificate_pem: Mapped[str] = mapped_column(Text)
    chain_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(1024))
    issuer: Mapped[str] = mapped_column(String(1024))
    key_algorithm: Mapped[str] = mapped_column(String(32))
    signature_algorithm: Mapped[str] = mapped_column(String(32))
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
