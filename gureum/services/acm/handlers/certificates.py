"""Importing, describing, listing, reading and deleting certificates, and their tags."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select

from gureum.api import paging
from gureum.api.dispatch import RequestContext, action
from gureum.services.acm import exceptions as exc
from gureum.services.acm import pem
from gureum.services.acm.validation import validation_record
from gureum.store.acm_models import Certificate
from gureum.store.elbv2_models import Listener
from gureum.store.models import utcnow

MAX_CERTIFICATES = 100
_ARN = re.compile(r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")


def _find(s: Any, ctx: RequestContext, arn: str) -> Certificate:
    if not _ARN.match(arn):
        raise exc.InvalidArnException(f"The ARN '{arn[:512]}' is not valid")
    cert = s.get(Certificate, arn)
    if cert is None or cert.account_id != ctx.account_id:
        raise exc.ResourceNotFoundException(f"Could not find certificate {arn}.")
    return cert


def in_use_by(s: Any, arn: str) -> list[str]:
    """The load balancers whose listeners serve this certificate."""
    return sorted({lst.load_balancer_arn for lst in s.scalars(select(Listener))
                   if any(c.get("CertificateArn") == arn for c in lst.certificates)})


def _tags(p: dict[str, Any]) -> dict[str, str]:
    tags = {}
    for tag in p.get("Tags") or []:
        key, value = tag["Key"], tag.get("Value", "")
        if key.lower().startswith("aws:") or not 1 <= len(key) <= 128 or len(value) > 256:
            raise exc.InvalidTagException(f"Tag '{key[:128]}' is not valid")
        tags[key] = value
    return tags


PAGE = paging.pager(lambda token: exc.InvalidArgsException(f"The NextToken {token} is not valid"),
                    lambda n, lo, hi: exc.ValidationException(
                        f"MaxItems must be between {lo} and {hi}"), lo=1, hi=1000)


@action("acm", "ImportCertificate")
def import_certificate(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    parsed = pem.parse(p["Certificate"], p["PrivateKey"], p.get("CertificateChain"))
    tags = _tags(p)
    with ctx.cloud.store.write() as s:
        if p.get("CertificateArn"):  # a re-import replaces the certificate in place
            cert = _find(s, ctx, p["CertificateArn"])
            if tags:
                raise exc.ValidationException("Tags cannot be given when re-importing")
            if cert.type != "IMPORTED":
                raise exc.ValidationException(f"Certificate {cert.arn} was not imported: "
                                              "only an imported certificate can be re-imported")
        else:
            held = len(list(s.scalars(select(Certificate.arn).where(
                Certificate.account_id == ctx.account_id))))
            if held >= MAX_CERTIFICATES:
                raise exc.LimitExceededException("The certificate quota has been reached")
            cert = Certificate(arn=f"arn:aws:acm:{ctx.region}:{ctx.account_id}:certificate/"
                                   f"{uuid.uuid4()}", account_id=ctx.account_id, tags=tags)
            s.add(cert)
        cert.certificate_pem = p["Certificate"].decode()
        cert.private_key_pem = p["PrivateKey"].decode()
        cert.chain_pem = p["CertificateChain"].decode() if p.get("CertificateChain") else None
        for field in ("domain_name", "alternative_names", "serial", "subject", "issuer",
                      "key_algorithm", "signature_algorithm", "not_before", "not_after"):
            setattr(cert, field, getattr(parsed, field))
        cert.imported_at = utcnow()
        return {"CertificateArn": cert.arn}


def _status(cert: Certificate) -> str:
    if cert.pending:
        return "PENDING_VALIDATION"
    return "EXPIRED" if cert.not_after < utcnow() else "ISSUED"


def _validation(cert: Certificate) -> list[dict[str, Any]]:
    status = "PENDING_VALIDATION" if cert.pending else "SUCCESS"
    return [{"DomainName": name, "ValidationDomain": name, "ValidationStatus": status,
             "ValidationMethod": cert.validation_method or "DNS",
             "ResourceRecord": validation_record(name)} for name in cert.alternative_names]


def _times(cert: Certificate) -> dict[str, Any]:
    """Validity and key details: a certificate still pending validation has none yet."""
    if cert.pending:
        return {}
    return {"Serial": cert.serial, "Subject": cert.subject, "Issuer": cert.issuer,
            "NotBefore": cert.not_before, "NotAfter": cert.not_after,
            "SignatureAlgorithm": cert.signature_algorithm}


@action("acm", "DescribeCertificate")
def describe_certificate(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        cert = _find(s, ctx, p["CertificateArn"])
        described = {
            "CertificateArn": cert.arn, "DomainName": cert.domain_name,
            "SubjectAlternativeNames": cert.alternative_names, "CreatedAt": cert.imported_at,
            "Status": _status(cert), "KeyAlgorithm": cert.key_algorithm,
            "InUseBy": in_use_by(s, cert.arn), "Type": cert.type,
            "RenewalEligibility": "INELIGIBLE", **_times(cert)}
        if cert.type == "IMPORTED":
            described["ImportedAt"] = cert.imported_at
        else:
            described["DomainValidationOptions"] = _validation(cert)
            if not cert.pending:
                described["IssuedAt"] = cert.imported_at
        return {"Certificate": described}


@action("acm", "ListCertificates")
def list_certificates(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    statuses = set(p.get("CertificateStatuses") or [])
    with ctx.cloud.store.read() as s:
        rows = list(s.scalars(select(Certificate).where(
            Certificate.account_id == ctx.account_id).order_by(Certificate.imported_at)))
        summaries = [{"CertificateArn": c.arn, "DomainName": c.domain_name,
                      "SubjectAlternativeNameSummaries": c.alternative_names,
                      "Status": _status(c), "Type": c.type, "KeyAlgorithm": c.key_algorithm,
                      "InUse": bool(in_use_by(s, c.arn)), "CreatedAt": c.imported_at,
                      **({"ImportedAt": c.imported_at} if c.type == "IMPORTED" else {}),
                      **({} if c.pending else {"NotBefore": c.not_before,
                                               "NotAfter": c.not_after})}
                     for c in rows if not statuses or _status(c) in statuses]
    chunk, token = PAGE(summaries, p.get("MaxItems"), p.get("NextToken"))
    return {"CertificateSummaryList": chunk, "NextToken": token}


@action("acm", "GetCertificate")
def get_certificate(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        cert = _find(s, ctx, p["CertificateArn"])
        if cert.pending:
            raise exc.RequestInProgressException(
                f"Certificate {cert.arn} is pending validation: it has not been issued")
        return {"Certificate": cert.certificate_pem, "CertificateChain": cert.chain_pem}


@action("acm", "DeleteCertificate")
def delete_certificate(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        cert = _find(s, ctx, p["CertificateArn"])
        users = in_use_by(s, cert.arn)
        if users:
            raise exc.ResourceInUseException(
                f"Certificate {cert.arn} is in use by {', '.join(users)[:512]}")
        s.delete(cert)
    return {}


@action("acm", "AddTagsToCertificate")
def add_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        cert = _find(s, ctx, p["CertificateArn"])
        merged = {**cert.tags, **_tags(p)}
        if len(merged) > 50:
            raise exc.TooManyTagsException("A certificate has at most 50 tags")
        cert.tags = merged
    return {}


@action("acm", "RemoveTagsFromCertificate")
def remove_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        cert = _find(s, ctx, p["CertificateArn"])
        gone = {t["Key"] for t in p["Tags"]}
        cert.tags = {k: v for k, v in cert.tags.items() if k not in gone}
    return {}


@action("acm", "ListTagsForCertificate")
def list_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        cert = _find(s, ctx, p["CertificateArn"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(cert.tags.items())]}
