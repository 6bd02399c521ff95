"""Reading imported certificates: PEM, the key must match, and what DescribeCertificate
reports (names, validity, algorithms)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from gureum.services.acm import exceptions as exc


@dataclass(frozen=True)
class Parsed:
    domain_name: str
    alternative_names: list[str]
    serial: str
    subject: str
    issuer: str
    key_algorithm: str
    signature_algorithm: str
    not_before: datetime
    not_after: datetime


def _key_algorithm(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "EC_prime256v1", "secp384r1": "EC_secp384r1",
                "secp521r1": "EC_secp521r1"}.get(key.curve.name, key.curve.name)
    raise exc.ValidationException("The certificate's key algorithm is not supported "
                                  "(use RSA or ECDSA)")


def parse(certificate: bytes, private_key: bytes, chain: bytes | None) -> Parsed:
    try:
        cert = x509.load_pem_x509_certificate(certificate)
    except ValueError:
        raise exc.ValidationException("The certificate is not a valid PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError):
        raise exc.ValidationException("The private key is not a valid unencrypted PEM key") \
            from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raise exc.ValidationException("Ed25519 keys are not supported for certificates")
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != cert.public_key().public_bytes(*public):
        raise exc.ValidationException("The private key does not match the certificate")
    if chain:
        try:
            x509.load_pem_x509_certificates(chain)
        except ValueError:
            raise exc.ValidationException("The certificate chain is not valid PEM") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        sans = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    domain = str(names[0].value) if names else (sans[0] if sans else "")
    algorithm = cert.signature_hash_algorithm
    kind = "RSA" if isinstance(cert.public_key(), rsa.RSAPublicKey) else "ECDSA"
    return Parsed(
        domain_name=domain, alternative_names=sans or [domain],
        serial=":".join(f"{b:02x}" for b in cert.serial_number.to_bytes(20, "big").lstrip(b"\0")),
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        key_algorithm=_key_algorithm(cert.public_key()),
        signature_algorithm=f"SHA{algorithm.digest_size * 8}WITH{kind}" if algorithm else kind,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc)
