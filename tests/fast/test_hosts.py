"""Joining hosts (issue #13): the join token, registration over HTTPS verified with the
cloud CA, the joined agent served over TLS with its own secret, heartbeats, refusal of a
wrong token and of a forged agent, `gureum host list|drain|undrain|remove|token`, and
DescribeAvailabilityZones from the hosts' zones. Joined hosts are FakeAgents behind the
real TLS listener (`hosts/join.py`), reached through the real client (`hosts/remote.py`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import update

from gureum.agent.fake import FakeAgent
from gureum.cli.main import main
from gureum.errors import AgentAuthFailed
from gureum.hosts import registry
from gureum.hosts.http import HEARTBEAT_PATH
from gureum.hosts.join import AgentTlsServer, Capacity, JoinedHost, JoinFailed, join_and_serve, post
from gureum.hosts.remote import JoinedHostAgent
from gureum.pki import CloudCA
from gureum.store.host_models import Host
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[FastCloud]:
    """A cloud of its own (hosts change its zones), HTTPS on loopback as beyond it."""
    from gureum.testing_postgres import SELECTED as ON_POSTGRES

    # A database of its own on PostgreSQL: the session cloud's zones stay as they are.
    url = request.getfixturevalue("postgres").create_database("hosts") if ON_POSTGRES else ""
    with pytest.MonkeyPatch.context() as env:
        if url:  # the `gureum host` commands the tests run read the same database
            env.setenv("GUREUM_DATABASE_URL", url)
        running = FastCloud(tmp_path_factory.mktemp("hosts"), url, api_tls="1")
        yield running
        running.stop()


def _join(cloud: FastCloud, name: str, zone: str | None = "gureum-1b",
          token: str | None = None, agent: FakeAgent | None = None) -> tuple[JoinedHost, FakeAgent]:
    agent = agent or FakeAgent()
    token = token or registry.join_token(cloud.cloud.store, cloud.config)
    joined = join_and_serve(agent, cloud.data_dir / f"pki-{name}", cloud.endpoint, token, name,
                            zone, ("127.0.0.1", 0), None, Capacity(8, 16384, 100),
                            cloud.cloud.ca.cert_path)
    return joined, agent


def _cli(cloud: FastCloud, *args: str) -> int:
    return main(["--data-dir", str(cloud.data_dir), *args])


def _hosts(cloud: FastCloud, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    capsys.readouterr()
    assert _cli(cloud, "host", "list", "--json") == 0
    return {h["name"]: h for h in json.loads(capsys.readouterr().out)}


def test_control_host_is_the_first_host(cloud: FastCloud, capsys: pytest.CaptureFixture[str]) -> None:
    listed = _hosts(cloud, capsys)
    control = [h for h in listed.values() if h["control"]]
    assert len(control) == 1
    assert control[0]["zone"] == "gureum-1a" and control[0]["state"] == "active"
    assert control[0]["vcpus"] == cloud.config.host_vcpus
    assert control[0]["host_id"] == cloud.cloud.control_host_id


def test_join_token_is_stored_hashed_and_rotates(cloud: FastCloud,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _cli(cloud, "host", "token") == 0
    first = capsys.readouterr().out.strip()
    assert _cli(cloud, "host", "token") == 0
    assert capsys.readouterr().out.strip() == first  # printed again, not changed
    assert first.startswith("gureum-join-")
    assert (cloud.data_dir / "join.token").stat().st_mode & 0o077 == 0
    db = cloud.data_dir / "gureum.db"
    if db.exists():
        assert first.encode() not in db.read_bytes()  # only its hash is stored
    assert _cli(cloud, "host", "token", "--rotate") == 0
    rotated = capsys.readouterr().out.strip()
    assert rotated != first
    with pytest.raises(JoinFailed, match="403"):
        _join(cloud, "old-token-host", token=first)
    joined, _ = _join(cloud, "new-token-host", token=rotated)
    joined.stop()
    assert _cli(cloud, "host", "remove", "new-token-host") == 0


def test_a_host_joins_heartbeats_and_is_called_over_tls(
        cloud: FastCloud, capsys: pytest.CaptureFixture[str]) -> None:
    joined, agent = _join(cloud, "rack2-host1", zone="gureum-1b")
    try:
        row = _hosts(cloud, capsys)["rack2-host1"]
        assert row["zone"] == "gureum-1b" and row["state"] == "active"
        assert (row["vcpus"], row["memory_mib"], row["disk_gib"]) == (8, 16384, 100)
        assert row["address"] == "127.0.0.1" and row["host_id"] == joined.host_id
        # The control plane reaches the joined agent over TLS with the host's secret.
        remote = cloud.cloud.agent_for(joined.host_id)
        assert isinstance(remote, JoinedHostAgent)
        assert remote.vpc_routers() == []
        assert [c for c in agent.calls if c[0] == "vpc_routers"]  # it was that host's agent
        before = row["last_heartbeat"]
        with cloud.cloud.store.write() as s:
            s.execute(update(Host).where(Host.host_id == joined.host_id).values(
                last_heartbeat=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
        joined.heartbeat()  # written within a second (heartbeats are batched)
        assert wait_for(lambda: _hosts(cloud, capsys)["rack2-host1"]["last_heartbeat"] >= before, 5)
        # The zones: the control host's and the joined one's, as AWS lists them.
        ec2 = cloud.client()
        zones = ec2.describe_availability_zones()["AvailabilityZones"]
        assert [(z["ZoneName"], z["ZoneId"]) for z in zones] == [
            ("gureum-1a", "gureum-1-az1"), ("gureum-1b", "gureum-1-az2")]
        only = ec2.describe_availability_zones(ZoneIds=["gureum-1-az2"])["AvailabilityZones"]
        assert [z["ZoneName"] for z in only] == ["gureum-1b"]
        with pytest.raises(ClientError) as err:
            ec2.describe_availability_zones(ZoneNames=["gureum-1c"])
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
        # Subnets belong to a zone the hosts declare.
        vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.61.1.0/24",
                                   AvailabilityZone="gureum-1b")["Subnet"]
        assert (subnet["AvailabilityZone"], subnet["AvailabilityZoneId"]) == (
            "gureum-1b", "gureum-1-az2")
        by_id = ec2.create_subnet(VpcId=vpc, CidrBlock="10.61.2.0/24",
                                  AvailabilityZoneId="gureum-1-az2")["Subnet"]
        assert by_id["AvailabilityZone"] == "gureum-1b"
        with pytest.raises(ClientError) as err:
            ec2.create_subnet(VpcId=vpc, CidrBlock="10.61.3.0/24", AvailabilityZone="gureum-1c")
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
        for sid in (subnet["SubnetId"], by_id["SubnetId"]):
            ec2.delete_subnet(SubnetId=sid)
        ec2.delete_vpc(VpcId=vpc)
    finally:
        joined.stop()
    assert _cli(cloud, "host", "remove", "rack2-host1") == 0


def test_wrong_token_and_bad_fields_are_refused_and_logged(
        cloud: FastCloud, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level(logging.WARNING, logger="gureum.hosts"), \
            pytest.raises(JoinFailed, match="403 join refused: wrong join token"):
        _join(cloud, "intruder", token="gureum-join-guessed")
    assert any("wrong join token" in r.getMessage() and "intruder" in r.getMessage()
               for r in caplog.records)
    assert "intruder" not in _hosts(cloud, capsys)
    with pytest.raises(JoinFailed, match="400 zone 'us-east-1a' is not a zone"):
        _join(cloud, "elsewhere", zone="us-east-1a")
    control = next(h for h in _hosts(cloud, capsys).values() if h["control"])["name"]
    with pytest.raises(JoinFailed, match="409"):
        _join(cloud, control)  # a joining host cannot take over the control host


def test_a_forged_agent_is_refused(cloud: FastCloud, caplog: pytest.LogCaptureFixture,
                                   tmp_path: Path) -> None:
    joined, _ = _join(cloud, "rack3-host1", zone="gureum-1c")
    host_id = joined.host_id
    port = joined.server.server_address[1]
    joined.stop()
    remote = cloud.cloud.agent_for(host_id)

    def forged(cert_pem: str, key_pem: str, secret: str) -> AgentTlsServer:
        (tmp_path / "f.pem").write_text(cert_pem)
        (tmp_path / "f.key").write_text(key_pem)
        server = AgentTlsServer(("127.0.0.1", port), FakeAgent())
        server.secure(tmp_path / "f.pem", tmp_path / "f.key", secret)
        import threading
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    # Another CA's certificate for the same address: the handshake fails verification.
    other = CloudCA(tmp_path / "other").issue(["127.0.0.1"])
    server = forged(other.certificate_pem, other.private_key_pem, "anything")
    try:
        with caplog.at_level(logging.WARNING, logger="gureum.hosts"), \
                pytest.raises(AgentAuthFailed, match="did not issue"):
            remote.vpc_routers()
    finally:
        server.shutdown()
        server.server_close()
    assert any("refused" in r.getMessage() for r in caplog.records)
    # Even a certificate our own CA signed for that address is not the one issued at join.
    ours = cloud.cloud.ca.issue(["127.0.0.1"])
    server = forged(ours.certificate_pem, ours.private_key_pem, "anything")
    try:
        with pytest.raises(AgentAuthFailed, match="not the host that joined"):
            remote.vpc_routers()
    finally:
        server.shutdown()
        server.server_close()
    # The real agent back on its port serves the control plane; a caller without the
    # host's secret (a forged control plane) is refused by the agent.
    again, _ = _join(cloud, "rack3-host1", zone="gureum-1c")
    try:
        cloud.cloud.agents.forget()
        assert cloud.cloud.agent_for(host_id).vpc_routers() == []
        with cloud.cloud.store.read() as s:
            row = s.get(Host, host_id)
            assert row is not None
            url, fingerprint = row.agent_url, row.cert_fingerprint
        assert url and fingerprint
        stranger = JoinedHostAgent(url, fingerprint, "not-the-secret", cloud.cloud.ca.cert_path,
                                   remote.plan)
        with pytest.raises(AgentAuthFailed, match="refused our token"):
            stranger.vpc_routers()
        # A heartbeat without the host's secret is refused and logged.
        with caplog.at_level(logging.WARNING, logger="gureum.hosts"), \
                pytest.raises(JoinFailed, match="403"):
            post(cloud.endpoint, HEARTBEAT_PATH, {"host_id": host_id, "secret": "guess"},
                 cloud.cloud.ca.cert_path)
        assert any("heartbeat refused" in r.getMessage() for r in caplog.records)
    finally:
        again.stop()
    assert main(["--data-dir", str(cloud.data_dir), "host", "remove", "rack3-host1"]) == 0


def test_join_needs_the_cloud_ca(cloud: FastCloud, tmp_path: Path) -> None:
    """The joining host verifies the control plane: with another CA it does not talk."""
    stranger_ca = CloudCA(tmp_path / "ca")
    stranger_ca.ensure()
    with pytest.raises(JoinFailed, match="CERTIFICATE_VERIFY_FAILED"):
        join_and_serve(FakeAgent(), tmp_path / "pki", cloud.endpoint,
                       registry.join_token(cloud.cloud.store, cloud.config), "wary",
                       None, ("127.0.0.1", 0), None, Capacity(1, 1024, 1),
                       stranger_ca.cert_path)


def test_lost_drain_undrain_remove(cloud: FastCloud, capsys: pytest.CaptureFixture[str]) -> None:
    joined, _ = _join(cloud, "rack4-host1", zone="gureum-1b")
    try:
        with cloud.cloud.store.write() as s:
            s.execute(update(Host).where(Host.host_id == joined.host_id).values(
                last_heartbeat=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
        assert registry.mark_lost(cloud.cloud.store) == ["rack4-host1"]
        assert _hosts(cloud, capsys)["rack4-host1"]["state"] == "lost"
        joined.heartbeat()
        assert _hosts(cloud, capsys)["rack4-host1"]["state"] == "active"
        assert _cli(cloud, "host", "drain", "rack4-host1") == 0
        assert _hosts(cloud, capsys)["rack4-host1"]["state"] == "draining"
        joined.heartbeat()  # a heartbeat does not undrain
        assert _hosts(cloud, capsys)["rack4-host1"]["state"] == "draining"
        assert _cli(cloud, "host", "undrain", joined.host_id) == 0
        assert _hosts(cloud, capsys)["rack4-host1"]["state"] == "active"
    finally:
        joined.stop()
    control = next(h for h in _hosts(cloud, capsys).values() if h["control"])["name"]
    capsys.readouterr()
    assert _cli(cloud, "host", "remove", control) == 1
    assert "control host" in capsys.readouterr().err
    assert _cli(cloud, "host", "remove", "no-such-host") == 1
    assert _cli(cloud, "host", "remove", "rack4-host1") == 0
    assert "rack4-host1" not in _hosts(cloud, capsys)
