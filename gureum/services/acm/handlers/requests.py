"""RequestCertificate: certificates signed by the cloud's own CA (gureum/pki.py).

- Names in gureum's own DNS zones (APP.<region>.apps.gureum.internal, load balancers'
  names) are validated at once, as ACM's DNS validation would be: gureum is their
  authority. The certificate is ISSUED in the request, Type AMAZON_ISSUED.
- With CertificateAuthorityArn naming the cloud's CA (`CLOUD_CA_ARN`), any name is issued
  at once, Type PRIVATE, as by ACM Private CA.
- Any other name is PENDING_VALIDATION with the DNS record ACM would ask for; gureum can't
  see the world's DNS, so it stays pending: import a certificate for such names instead.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.cloud import CLOUD_OWNER_ID
from gureum.services.acm import exceptions as exc
from gureum.services.acm import pem
from gureum.services.acm.handlers.certificates import MAX_CERTIFICATES, _tags
from gureum.services.acm.validation import in_own_zone
from gureum.store.acm_models import Certificate
from gureum.store.models import utcnow

MAX_NAMES = 100  # ACM's default quota of names per certificate
_NAME = re.compile(r"^(\*\.)?(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+[A-Za-z]{2,63}\.?$")
KEY_ALGORITHMS = ("RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1",
                  "EC_secp521r1")


def cloud_ca_arn(region: str) -> str:
    return f"arn:aws:acm-pca:{region}:{CLOUD_OWNER_ID}:certificate-authority/gureum"


def _names(p: dict[str, Any]) -> list[str]:
    names = [p["DomainName"], *(p.get("SubjectAlternativeNames") or [])]
    for name in names:
        if len(name) > 253 or not _NAME.match(name):
            raise exc.InvalidDomainValidationOptionsException(
                f"Domain name {name[:253]!r} is not valid")
    unique = list(dict.fromkeys(n.rstrip(".").lower() for n in names))
    if len(unique) > MAX_NAMES:
        raise exc.LimitExceededException(
            f"A certificate can have at most {MAX_NAMES} domain names")
    return unique


@action("acm", "RequestCertificate")
def request_certificate(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names = _names(p)
    method = p.get("ValidationMethod") or "DNS"
    algorithm = p.get("KeyAlgorithm") or "RSA_2048"
    if algorithm not in KEY_ALGORITHMS:
        raise exc.ValidationException(f"KeyAlgorithm {algorithm} is not supported: one of "
                                      f"{', '.join(KEY_ALGORITHMS)}")
    authority = p.get("CertificateAuthorityArn")
    if authority is not None and authority != cloud_ca_arn(ctx.region):
        raise exc.ResourceNotFoundException(
            f"Could not find certificate authority {authority[:512]}; this cloud's is "
            f"{cloud_ca_arn(ctx.region)}")
    tags = _tags(p)
    token = p.get("IdempotencyToken")
    arn_id = (uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.account_id}/{token}/{','.join(names)}")
              if token else uuid.uuid4())
    arn = f"arn:aws:acm:{ctx.region}:{ctx.account_id}:certificate/{arn_id}"
    with ctx.cloud.store.read() as s:
        if s.get(Certificate, arn) is not None:  # the same request again: the same answer
            return {"CertificateArn": arn}
    issue = authority is not None or (method == "DNS" and all(in_own_zone(n) for n in names))
    # Signing (an RSA key takes a while) happens outside the write transaction.
    issued = ctx.cloud.ca.issue(names, algorithm) if issue else None
    with ctx.cloud.store.write() as s:
        held = len(list(s.scalars(select(Certificate.arn).where(
            Certificate.account_id == ctx.account_id))))
        if held >= MAX_CERTIFICATES:
            raise exc.LimitExceededException("The certificate quota has been reached")
        cert = Certificate(arn=arn, account_id=ctx.account_id, tags=tags, domain_name=names[0],
                           alternative_names=names, validation_method=method,
                           type="PRIVATE" if authority else "AMAZON_ISSUED",
                           pending=issued is None, key_algorithm=algorithm,
                           imported_at=utcnow())
        if issued is None:
            now = utcnow()
            cert.certificate_pem = cert.private_key_pem = cert.serial = ""
            cert.subject = cert.issuer = cert.signature_algorithm = ""
            cert.not_before = cert.not_after = now
        else:
            parsed = pem.parse(issued.certificate_pem.encode(), issued.private_key_pem.encode(),
                               issued.chain_pem.encode())
            cert.certificate_pem, cert.private_key_pem = (issued.certificate_pem,
                                                          issued.private_key_pem)
            cert.chain_pem = issued.chain_pem
            for field in ("serial", "subject", "issuer", "signature_algorithm", "not_before",
                          "not_after"):
                setattr(cert, field, getattr(parsed, field))
        s.add(cert)
    return {"CertificateArn": arn}
