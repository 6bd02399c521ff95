"""The API and console over HTTPS: certificates the cloud's CA signs (IP SANs included)
or the operator's, clients that verify them with the profile's ca_bundle, and nothing
but a pointer to https for a plain-HTTP client. Beyond loopback there is no plain HTTP."""

from __future__ import annotations

import configparser
import http.client
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, SSLError
from botocore.parsers import ResponseParserError
from cryptography import x509

from gureum.api import tls
from gureum.api.server import serve
from gureum.cli.profile import write_profile
from gureum.config import Config, is_loopback
from gureum.console.sessions import COOKIE
from gureum.console.testing import TOKEN
from gureum.errors import ConfigError
from gureum.pki import CloudCA
from gureum.testing_inprocess import FastCloud

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastCloud]:
    """A cloud whose loopback listener is asked for TLS (GUREUM_API_TLS=1)."""
    cloud = FastCloud(tmp_path_factory.mktemp("tls"), api_tls="1")
    yield cloud
    cloud.stop()


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> None:
    """A TLS handshake over a socket pair; raises what the client's verification raises."""
    ours, theirs = socket.socketpair()

    def serve_one() -> None:
        try:
            server.wrap_socket(theirs, server_side=True).close()
        except (ssl.SSLError, OSError):
            theirs.close()

    thread = threading.Thread(target=serve_one)
    thread.start()
    try:
        client.wrap_socket(ours, server_hostname=name).close()
    finally:
        ours.close()
        thread.join(5)


def test_ip_sans_are_what_clients_verify_addresses_against(tmp_path: Path) -> None:
    ca = CloudCA(tmp_path)
    issued = ca.issue(["api.test", "10.1.2.3", "fd00::7"])
    cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api.test"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3", "fd00::7"]
    (tmp_path / "leaf.pem").write_text(issued.certificate_pem)
    (tmp_path / "leaf.key").write_text(issued.private_key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    for name in ("api.test", "10.1.2.3", "fd00::7"):
        handshake(server, client, name)
    for wrong in ("10.1.2.4", "other.test"):
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server, client, wrong)
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not know the CA
        handshake(server, ssl.create_default_context(), "10.1.2.3")


def test_beyond_loopback_the_endpoint_is_https_and_the_certificate_names_it(
        tmp_path: Path) -> None:
    lan = Config(data_dir=tmp_path, host="10.1.2.3", port=8773)
    assert lan.api_over_tls and lan.endpoint == "https://10.1.2.3:8773"
    assert "10.1.2.3" in tls.certificate_names(lan)
    assert socket.gethostname() in tls.certificate_names(lan)
    assert tls.ca_bundle(lan) == CloudCA(tmp_path).cert_path
    local = Config(data_dir=tmp_path, host="127.0.0.1", port=8773, api_tls="")
    assert not local.api_over_tls and local.endpoint == "http://127.0.0.1:8773"
    assert tls.ca_bundle(local) is None
    everywhere = Config(data_dir=tmp_path, host="0.0.0.0", port=1, api_names="cloud.example")
    assert everywhere.endpoint == "https://cloud.example:1"
    names = tls.certificate_names(everywhere)
    assert names[0] == "cloud.example" and {"localhost", "127.0.0.1", "::1"} <= set(names)
    assert Config(data_dir=tmp_path, host="::1", port=2, api_tls="1").endpoint == "https://[::1]:2"
    assert is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("192.168.1.1") and not is_loopback("0.0.0.0")


def test_plain_http_beyond_loopback_is_refused(tmp_path: Path, secure: FastCloud) -> None:
    cfg = Config(data_dir=tmp_path, host="10.1.2.3", api_tls="0")
    with pytest.raises(ConfigError, match="clear text"):
        tls.server_context(cfg, CloudCA(tmp_path))
    with pytest.raises(ConfigError, match="clear text"):  # the server itself refuses too
        serve(secure.cloud, "10.1.2.3", 1, None)


def test_the_issued_certificate_is_kept_and_remade_when_its_names_change(
        tmp_path: Path) -> None:
    ca = CloudCA(tmp_path)
    cfg = Config(data_dir=tmp_path, host="10.1.2.3")
    first = tls.server_certificate(cfg, ca)
    assert first.made_by_cloud and first.key_path.stat().st_mode & 0o077 == 0
    pem = first.cert_path.read_bytes()
    assert tls.server_certificate(cfg, ca).cert_path.read_bytes() == pem
    cfg.api_names = "api.example"
    assert tls.server_certificate(cfg, ca).cert_path.read_bytes() != pem
    assert tls.server_context(cfg, ca) is not None


def test_the_operators_certificate_is_served_as_given(tmp_path: Path) -> None:
    theirs = CloudCA(tmp_path / "their-ca")
    issued = theirs.issue(["10.1.2.3"])
    (tmp_path / "api.pem").write_text(issued.certificate_pem)
    (tmp_path / "api.key").write_text(issued.private_key_pem)
    cfg = Config(data_dir=tmp_path / "data", host="10.1.2.3", api_cert=str(tmp_path / "api.pem"),
                 api_key=str(tmp_path / "api.key"), api_ca_bundle=str(theirs.cert_path))
    chosen = tls.server_certificate(cfg, CloudCA(cfg.data_dir))
    assert not chosen.made_by_cloud and chosen.cert_path == tmp_path / "api.pem"
    assert tls.server_context(cfg, CloudCA(cfg.data_dir)) is not None
    assert tls.ca_bundle(cfg) == theirs.cert_path
    assert not (cfg.data_dir / "pki" / "api.pem").exists()
    cfg.api_key = ""
    with pytest.raises(ConfigError, match="go together"):
        tls.server_context(cfg, CloudCA(cfg.data_dir))
    cfg.api_key = str(tmp_path / "api.pem")  # not a key
    with pytest.raises(ConfigError, match="cannot load"):
        tls.server_context(cfg, CloudCA(cfg.data_dir))


def test_boto3_verifying_the_cloud_ca_works_and_the_key_material_travels_encrypted(
        secure: FastCloud) -> None:
    assert secure.endpoint.startswith("https://127.0.0.1:")
    ec2 = secure.client()
    assert ec2.describe_instances()["Reservations"] == []
    material = ec2.create_key_pair(KeyName="over-tls", KeyType="ed25519")["KeyMaterial"]
    assert material.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert secure.client("sts").get_caller_identity()["Account"] == secure.running.account_id


def test_a_client_that_does_not_trust_the_ca_stops_at_the_handshake(secure: FastCloud) -> None:
    access, secret = secure.credentials()
    stranger = boto3.client("ec2", endpoint_url=secure.endpoint, region_name="gureum-1",
                            aws_access_key_id=access, aws_secret_access_key=secret,
                            config=BotoConfig(retries={"max_attempts": 0}))
    with pytest.raises(SSLError):
        stranger.describe_instances()


def test_plain_http_to_the_tls_port_gets_no_api_answer(secure: FastCloud) -> None:
    access, secret = secure.credentials()
    plain = boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{secure.port}",
                         region_name="gureum-1", aws_access_key_id=access,
                         aws_secret_access_key=secret,
                         config=BotoConfig(retries={"max_attempts": 0}))
    with pytest.raises(ResponseParserError, match="HTTPS only"):  # what the CLI shows
        plain.create_key_pair(KeyName="never")
    conn = http.client.HTTPConnection("127.0.0.1", secure.port, timeout=10)
    conn.request("POST", "/", body="Action=DescribeInstances&Version=2016-11-15",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 400 and "HTTPS only" in body and "<" not in body
    conn.close()
    with pytest.raises(ClientError):  # and nothing was made
        secure.client().describe_key_pairs(KeyNames=["never"])


def test_the_profile_names_the_ca_and_boto3_and_the_aws_cli_verify_with_it(
        secure: FastCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)  # it would win over the profile's
    access, secret = secure.credentials()
    bundle = tls.ca_bundle(secure.config)
    assert bundle is not None
    write_profile("gureum", access, secret, "gureum-1", secure.endpoint, bundle)
    parser = configparser.ConfigParser()
    parser.read(tmp_path / "config")
    assert parser["profile gureum"]["ca_bundle"] == str(bundle)
    assert parser["profile gureum"]["endpoint_url"].startswith("https://")
    ec2 = boto3.Session(profile_name="gureum").client("ec2")
    assert "KeyPairs" in ec2.describe_key_pairs()
    out = subprocess.run([str(VENV_BIN / "aws"), "--profile", "gureum", "ec2",
                          "describe-instances"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # A loopback endpoint over plain HTTP writes no ca_bundle (and drops an old one).
    write_profile("gureum", access, secret, "gureum-1", "http://127.0.0.1:1")
    parser = configparser.ConfigParser()
    parser.read(tmp_path / "config")
    assert "ca_bundle" not in parser["profile gureum"]


def _https(cloud: FastCloud) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=tls.client_verify(cloud.config))
    return http.client.HTTPSConnection("127.0.0.1", cloud.port, context=context, timeout=10)


def test_the_console_over_tls_has_secure_cookies_and_its_https_origin(secure: FastCloud) -> None:
    link = secure.running.server.console.sign_in_url(secure.running.account_id)
    assert link.startswith(secure.endpoint + "/console/signin?token=")
    conn = _https(secure)
    conn.request("GET", link.removeprefix(secure.endpoint))
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie") or ""
    assert resp.status == 303 and cookie.startswith(COOKIE + "=") and "; Secure" in cookie
    session = cookie.split(";")[0]
    conn.request("GET", "/console/instances", headers={"Cookie": session})
    page = conn.getresponse().read().decode()
    token = TOKEN.search(page)
    assert token is not None
    form = {"Cookie": session, "Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", "/console/signout", body=f"csrf_token={token.group(1)}",
                 headers={**form, "Origin": f"http://127.0.0.1:{secure.port}"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 403, "an http:// origin is another site's page here"
    conn.request("POST", "/console/signout", body=f"csrf_token={token.group(1)}",
                 headers={**form, "Origin": f"https://127.0.0.1:{secure.port}"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 303 and "; Secure" in (resp.getheader("Set-Cookie") or "")
    conn.close()
