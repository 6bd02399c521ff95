"""AWS Signature Version 4 verification (Authorization header form).

Recomputes the canonical request exactly as botocore builds it and compares signatures
in constant time. The credential scope names the service the request is for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from gureum.api.exceptions import (
    AuthFailure,
    IncompleteSignature,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _uri_encode(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def parse_authorization(header: str) -> tuple[Credential, list[str], str]:
    if not header.startswith(ALGORITHM + " "):
        raise IncompleteSignature(f"Authorization header must use {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in header[len(ALGORITHM) + 1:].split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    try:
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise IncompleteSignature("Credential must have the form KEY/DATE/REGION/SERVICE/aws4_request")
        credential = Credential(scope[0], scope[1], scope[2], scope[3])
        return credential, fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError as missing:
        raise IncompleteSignature(f"Authorization header requires '{missing.args[0]}'") from None


def credential_of(headers: dict[str, str]) -> Credential:
    auth = headers.get("authorization")
    if not auth:
        raise MissingAuthenticationToken("Request is missing Authentication Token")
    return parse_authorization(auth)[0]


def verify(method: str, path: str, query: str, headers: dict[str, str], body: bytes,
           secret_for: Callable[[str], str | None], now: dt.datetime | None = None) -> Credential:
    """Raise an AWS auth error unless the request is signed by a known key. `headers` keys
    are lower-case."""
    auth = headers.get("authorization")
    if not auth:
        raise MissingAuthenticationToken("Request is missing Authentication Token")
    credential, signed_headers, signature = parse_authorization(auth)
    amz_date = headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise IncompleteSignature("X-Amz-Date header is missing or malformed") from None
    now = now or dt.datetime.now(dt.UTC)
    if abs(now - when) > MAX_SKEW:
        raise RequestExpired(f"Request has expired: X-Amz-Date {amz_date} is more than 15 "
                             "minutes from the server's time")
    if credential.date != amz_date[:8]:
        raise SignatureDoesNotMatch("Credential date does not match X-Amz-Date")
    secret = secret_for(credential.access_key_id)
    if secret is None:
        raise AuthFailure("AWS was not able to validate the provided access credentials")
    if "host" not in signed_headers:
        raise SignatureDoesNotMatch("The host header must be signed")
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers)
    pairs = sorted((_uri_encode(k), _uri_encode(v))
                   for k, v in parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join([
        method, _uri_encode(path or "/", safe="/-_.~"), canonical_query, canonical_headers,
        ";".join(signed_headers), payload_hash,
    ])
    scope = f"{credential.date}/{credential.region}/{credential.service}/aws4_request"
    string_to_sign = "\n".join([
        ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _sign(("AWS4" + secret).encode(), credential.date)
    for part in (credential.region, credential.service, "aws4_request"):
        key = _sign(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureDoesNotMatch(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.")
    return credential
