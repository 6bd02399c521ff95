"""HTTPS for the API and console: whenever the listener is beyond loopback (or the
operator asks, GUREUM_API_TLS=1), with the operator's certificate or one the cloud's CA
signs for the listen address and host names. Plain HTTP beyond loopback is refused:
CreateKeyPair's private key and every secret key's signatures would cross a network in
clear text.

Server side: `server_context` (None = plain HTTP on loopback). Client side (profile,
deploy, tests): `ca_bundle` / `client_verify`, what boto3 verifies the server with."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gureum.config import WILDCARD_HOSTS, Config, is_loopback
from gureum.errors import ConfigError
from gureum.pki import CloudCA

RENEW_BEFORE = dt.timedelta(days=30)  # an issued certificate is remade this long before it ends


def certificate_names(cfg: Config) -> list[str]:
    """The names the API's certificate carries: what clients may call it by (the first is
    the subject). A wildcard listener is reachable by every address of the host."""
    hostname = socket.gethostname()
    names = [cfg.endpoint_host.strip("[]"), *cfg.api_name_list, hostname, socket.getfqdn()]
    if cfg.host in WILDCARD_HOSTS or is_loopback(cfg.host):
        names += ["localhost", "127.0.0.1", "::1"]
    if cfg.host in WILDCARD_HOSTS:
        # A host name that does not resolve: its addresses stay out.
        with contextlib.suppress(OSError):
            names += [info[4][0] for info in socket.getaddrinfo(hostname, None)]
    return list(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class ServerCertificate:
    cert_path: Path
    key_path: Path
    made_by_cloud: bool  # False: the operator's own


def _issued_paths(ca: CloudCA) -> tuple[Path, Path]:
    return ca.dir / "api.pem", ca.dir / "api.key"


def _still_good(cert_path: Path, names: list[str], ca_cert: x509.Certificate) -> bool:
    """Whether the issued certificate on disk names exactly `names`, was signed by this
    CA and is not about to end."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in sans.get_values_for_type(x509.DNSName)} | {
        str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    want = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}
    return (have == want and cert.issuer == ca_cert.subject
            and cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def server_certificate(cfg: Config, ca: CloudCA) -> ServerCertificate:
    """The operator's certificate when given, else the CA's, issued once and kept in
    `<data>/pki/api.{pem,key}` (remade when the names change or it nears its end)."""
    if cfg.api_cert or cfg.api_key:
        if not (cfg.api_cert and cfg.api_key):
            raise ConfigError("GUREUM_API_CERT and GUREUM_API_KEY go together")
        return ServerCertificate(Path(cfg.api_cert), Path(cfg.api_key), made_by_cloud=False)
    ca_cert, _ = ca.ensure()
    cert_path, key_path = _issued_paths(ca)
    names = certificate_names(cfg)
    if not _still_good(cert_path, names, ca_cert):
        issued = ca.issue(names)
        # Key first (0600), then the certificate: a certificate on disk has its key.
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(issued.private_key_pem)
        tmp.replace(key_path)
        tmp = cert_path.with_suffix(".tmp")
        tmp.write_text(issued.certificate_pem)
        tmp.replace(cert_path)
    return ServerCertificate(cert_path, key_path, made_by_cloud=True)


def server_context(cfg: Config, ca: CloudCA) -> ssl.SSLContext | None:
    """The listener's TLS context; None for plain HTTP, which only loopback may have."""
    if not cfg.api_over_tls:
        if not is_loopback(cfg.host):
            raise ConfigError(
                f"refusing to serve the API in clear text on {cfg.host}: beyond loopback it "
                "is HTTPS only (unset GUREUM_API_TLS=0)")
        return None
    chosen = server_certificate(cfg, ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(chosen.cert_path, chosen.key_path)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"cannot load the API certificate {chosen.cert_path} with key "
                          f"{chosen.key_path}: {err}") from err
    return context


def ca_bundle(cfg: Config) -> Path | None:
    """What clients verify the API's certificate with (the profile's `ca_bundle`): the
    cloud CA's certificate when the cloud made the server's, the operator's bundle when
    named; None for plain HTTP or a certificate the system's trust store knows."""
    if not cfg.api_over_tls:
        return None
    if cfg.api_cert:
        return Path(cfg.api_ca_bundle) if cfg.api_ca_bundle else None
    return CloudCA(cfg.data_dir).cert_path


def client_verify(cfg: Config) -> str | None:
    """boto3's `verify=` for this cloud's endpoint (None: its default)."""
    bundle = ca_bundle(cfg)
    return str(bundle) if bundle else None


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of a certificate, as `openssl x509 -fingerprint -sha256` prints it: what an
    operator compares on another machine before trusting a copied CA file."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# A TLS peer that vanishes mid-request (scanners, resets, a client that gave up) is routine:
# the servers log it briefly instead of printing a traceback.
ROUTINE_DISCONNECTS = (ssl.SSLError, ConnectionError, TimeoutError)


def serve_secured(secured: ssl.SSLSocket, serve: Callable[[ssl.SSLSocket], None]) -> None:
    """Serve one TLS connection, then end it cleanly (our side's close_notify first)."""
    try:
        serve(secured)
    finally:
        with contextlib.suppress(OSError):
            secured.shutdown(socket.SHUT_WR)
        secured.close()
