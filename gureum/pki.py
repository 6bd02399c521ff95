"""The cloud's own certificate authority: it signs the certificates ACM issues (names in
gureum's own DNS zones, which it validates by being their authority, and any name asked
of it as a private CA). Its key stays in the data directory, readable by root only; its
certificate is what clients trust (`gureum up` says where it is)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 395  # as ACM's certificates: 13 months
_lock = threading.Lock()


@dataclass(frozen=True)
class Issued:
    certificate_pem: str
    private_key_pem: str
    chain_pem: str  # the CA's certificate


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class CloudCA:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "pki"
        self.cert_path = self.dir / "ca.pem"
        self.key_path = self.dir / "ca.key"

    def ensure(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The CA's certificate and key, made on first use."""
        with _lock:
            if not self.cert_path.exists():
                self._create()
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return cert, key

    def _create(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gureum"),
                          x509.NameAttribute(NameOID.COMMON_NAME,
                                             f"gureum cloud CA {self.dir.parent.name}")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        # Key first, then certificate: a certificate on disk always has its key.
        tmp = self.key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_pem_key(key))
        tmp.replace(self.key_path)
        tmp = self.cert_path.with_suffix(".tmp")
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        tmp.replace(self.cert_path)

    def issue(self, names: list[str], key_algorithm: str = "EC_prime256v1",
              days: int = LEAF_DAYS) -> Issued:
        """A server certificate for `names` (the first is its subject), with a new key.
        A name that is an IP address becomes an IP SAN (what clients match an address
        against), any other a DNS SAN."""
        ca_cert, ca_key = self.ensure()
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if key_algorithm.startswith("RSA_"):
            key = rsa.generate_private_key(65537, int(key_algorithm.removeprefix("RSA_")))
        else:
            curve = {"EC_secp384r1": ec.SECP384R1(), "EC_secp521r1": ec.SECP521R1()}.get(
                key_algorithm, ec.SECP256R1())
            key = ec.generate_private_key(curve)
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return Issued(cert.public_bytes(serialization.Encoding.PEM).decode(),
                      _pem_key(key).decode(),
                      ca_cert.public_bytes(serialization.Encoding.PEM).decode())
