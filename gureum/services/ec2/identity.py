"""The cloud's instance-identity signing key: signs identity documents so that a client
can verify them against the published certificate (`GET /identity-certificate.pem` on the
API endpoint, or <data dir>/identity/certificate.pem)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import textwrap
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

SIGNED_KEPT = 4096  # documents whose signatures are remembered


class IdentitySigner:
    def __init__(self, directory: Path, region: str) -> None:
        directory.mkdir(mode=0o700, exist_ok=True)
        key_path, cert_path = directory / "key.pem", directory / "certificate.pem"
        if not key_path.exists() or not cert_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gureum"),
                              x509.NameAttribute(NameOID.COMMON_NAME, f"gureum {region} identity")])
            now = dt.datetime.now(dt.UTC)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - dt.timedelta(days=1))
                    .not_valid_after(now + dt.timedelta(days=3650))
                    .sign(key, hashes.SHA256()))
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        self.certificate_pem = cert_path.read_bytes()
        self.certificate = x509.load_pem_x509_certificate(self.certificate_pem)
        self._signed: dict[bytes, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def sign(self, document: bytes) -> tuple[str, str]:
        """(signature, pkcs7) of a document. Remembered: the metadata pushed to hosts is
        rebuilt on every change of a VPC, and a document changes only with its instance
        (two RSA operations each would add up on every launch)."""
        with self._lock:
            known = self._signed.get(document)
        if known is None:
            known = (self.signature(document), self.pkcs7(document))
            with self._lock:
                if len(self._signed) >= SIGNED_KEPT:
                    self._signed.clear()
                self._signed[document] = known
        return known

    def signature(self, document: bytes) -> str:
        """/signature: base64 RSA-SHA256 (PKCS#1 v1.5) over the document's bytes."""
        sig = self.key.sign(document, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
        return "\n".join(textwrap.wrap(base64.b64encode(sig).decode(), 64))

    def pkcs7(self, document: bytes) -> str:
        """/pkcs7 and /rsa2048: a detached PKCS#7 signature, base64 without PEM armour."""
        der = (pkcs7.PKCS7SignatureBuilder().set_data(document)
               .add_signer(self.certificate, self.key, hashes.SHA256())  # type: ignore[arg-type]
               .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature]))
        return "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
