"""AWS Certificate Manager: imported certificates and those the cloud's CA issued (with
their private keys, which stay in the data directory and go only to this host's load
balancers). A requested certificate gureum cannot validate stays PENDING_VALIDATION, with
no certificate yet (its PEM fields empty)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, false
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
    # IMPORTED | AMAZON_ISSUED (a name gureum's DNS is the authority for) | PRIVATE
    type: Mapped[str] = mapped_column(String(16), default="IMPORTED", server_default="IMPORTED")
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    validation_method: Mapped[str | None] = mapped_column(String(8), nullable=True)
