"""Joining hosts, for real (issue #13): `gureum up` listens (HTTPS) on the host side of a
veth this test makes (RFC 2544's 198.18.0.0/15, never the host's own network); a second
"host" is a netns on the other end, with its own data directory (its own prefix) and its
own `gureum agent --join` process (entered with nsenter: its own network, the machine's
filesystem). It registers, heartbeats and serves the agent contract over TLS; a wrong
token is refused and logged, a forged agent at its address is refused; teardown leaves no
netns, veth or process."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import VENV_BIN, Laptop, proven_clean, sh, wait_for

from gureum.config import Config
from gureum.errors import AgentAuthFailed
from gureum.hosts.remote import JoinedHostAgent
from gureum.pki import CloudCA
from gureum.store.db import Store
from gureum.store.host_models import Host
from gureum.testing import ManagedProcess, Server

LINK = "198.18.79.0/30"
CONTROL, SECOND = "198.18.79.1", "198.18.79.2"


class JoinedAgent(ManagedProcess):
    """`gureum agent --join` inside the second host's netns, on its own data directory."""

    stop_timeout = 30

    def __init__(self, server: Server, ns: str, data_dir: Path, name: str = "host2",
                 zone: str = "gureum-1b", address: str = SECOND) -> None:
        self.server, self.ns, self.data_dir, self.name, self.zone = server, ns, data_dir, name, zone
        self.address = address
        self.env = {**server.env, "GUREUM_DATA_DIR": str(data_dir)}
        self.port = 0
        self.host_id = ""

    def command(self, token: str, port: int = 0) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns}", str(VENV_BIN / "gureum"), "agent",
                "--join", self.server.endpoint, "--token", token, "--name", self.name,
                "--zone", self.zone, "--listen", f"{self.address}:{port}",
                "--ca", str(self.server.ca_bundle)]

    def start(self, token: str) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(self.command(token, self.port), env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.match(r"AGENT JOINED (h-\w+) [\d.]+:(\d+)", line)
        assert found, f"agent did not join: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}"
        self.host_id, self.port = found.group(1), int(found.group(2))


@dataclass
class Cluster:
    server: Server
    second: Laptop
    agent: JoinedAgent
    more: list[tuple[Laptop, JoinedAgent]] = field(default_factory=list)  # further hosts

    def hosts(self) -> dict[str, dict]:
        out = sh(str(VENV_BIN / "gureum"), "--data-dir", str(self.server.data_dir), "host",
                 "list", "--json", env=self.server.env).stdout
        return {h["name"]: h for h in json.loads(out)}

    def token(self) -> str:
        return sh(str(VENV_BIN / "gureum"), "--data-dir", str(self.server.data_dir), "host",
                  "token", env=self.server.env).stdout.strip()

    def row(self) -> Host:
        store = Store(Config(data_dir=self.server.data_dir).store_url)
        with store.read() as s:
            host = s.get(Host, self.agent.host_id)
            assert host is not None
            s.expunge(host)
        store.engine.dispose()
        return host

    def client_of(self, row: Host, secret: str | None = None) -> JoinedHostAgent:
        """The control plane's own client for the joined host, built from its row."""
        from gureum.agent.network import plan_for

        assert row.agent_url and row.cert_fingerprint and row.agent_secret
        return JoinedHostAgent(row.agent_url, row.cert_fingerprint, secret or row.agent_secret,
                               CloudCA(self.server.data_dir).cert_path,
                               plan_for(Config(data_dir=self.server.data_dir)))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from running_cluster(LINK, CONTROL, SECOND)


@dataclass(frozen=True)
class MoreHost:
    """A further joined host on a /30 of its own (`link`; `host_side` the machine's end,
    `address` its own), routed through the machine to the others."""
    link: str
    host_side: str
    address: str
    name: str
    zone: str = "gureum-1b"


def running_cluster(link: str, control: str, address: str, zone: str = "gureum-1b",
                    more: tuple[MoreHost, ...] = ()) -> Iterator[Cluster]:
    """`gureum up` on `control`, a second host at `address` (both in `link`, a /30 the
    test claims) in `zone`, and `more` hosts, joined; at the end every host is proven
    clean. Every link gets a blackhole route under its own: whatever happens to a link,
    its addresses never fall through to the default route (the machine's own network)."""
    data_dir = Path(f"/var/tmp/gureum-test-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    server = Server(data_dir, host=control)
    server.env.pop("AWS_CA_BUNDLE", None)
    server.env["GUREUM_HEARTBEAT_SECONDS"] = "1"
    prefix = Config(data_dir=data_dir).prefix
    links = [link, *(m.link for m in more)]
    hosts: list[tuple[Laptop, JoinedAgent]] = []
    try:
        for n, (net, side, ip, name, host_zone) in enumerate(
                [(link, control, address, "host2", zone),
                 *((m.link, m.host_side, m.address, m.name, m.zone) for m in more)]):
            routes = tuple(other for other in links if other != net)
            laptop = Laptop(f"{prefix}-h{n + 2}", f"{prefix}h{n}", side, ip, 30,
                            routes=routes, claims=(net,), gro=True)
            sh("ip", "route", "replace", "blackhole", net, "metric", "65000")
            hosts.append((laptop, JoinedAgent(server, laptop.ns, Path(f"{data_dir}-{name}"),
                                              name=name, zone=host_zone, address=ip)))
        server.start()
        cluster = Cluster(server, hosts[0][0], hosts[0][1], hosts[1:])
        for _, agent in hosts:
            agent.start(cluster.token())
    except BaseException:
        for _, agent in hosts:
            agent.stop()
        server.stop()
        for laptop, _ in hosts:
            laptop.remove()
        for net in links:
            sh("ip", "route", "del", "blackhole", net, "metric", "65000", check=False)
        with contextlib.suppress(OSError):  # a skip before the server wrote anything
            data_dir.rmdir()
        raise
    yield cluster

    def stop_joined_hosts() -> None:
        failed = []
        for laptop, agent in hosts:
            agent.stop()
            # The host's own objects, seen from inside it (its prefix, its netns).
            doctor = sh("nsenter", f"--net=/run/netns/{laptop.ns}", str(VENV_BIN / "gureum"),
                        "--data-dir", str(agent.data_dir), "doctor", "--expect-clean",
                        env=agent.env, check=False)
            laptop.remove()
            if doctor.returncode != 0:
                failed.append(doctor.stdout)
        assert not failed, failed
    try:
        proven_clean(server, then=stop_joined_hosts)
    finally:
        for net in links:
            sh("ip", "route", "del", "blackhole", net, "metric", "65000", check=False)
    import shutil
    for laptop, agent in hosts:
        assert agent.proc is not None and agent.proc.poll() is not None
        assert laptop.ns not in sh("ip", "netns", "list").stdout
        assert laptop.link not in sh("ip", "-o", "link", "show").stdout
        shutil.rmtree(agent.data_dir, ignore_errors=True)


def test_a_second_host_joins_and_heartbeats(cluster: Cluster) -> None:
    hosts = cluster.hosts()
    joined = hosts["host2"]
    assert (joined["zone"], joined["address"], joined["state"]) == ("gureum-1b", SECOND, "active")
    assert joined["host_id"] == cluster.agent.host_id and joined["vcpus"] >= 1
    assert [h["zone"] for h in hosts.values() if h["control"]] == ["gureum-1a"]
    first = cluster.row().last_heartbeat
    assert first is not None
    assert wait_for(lambda: cluster.row().last_heartbeat > first, 5)  # every second here
    zones = cluster.server.client().describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["gureum-1a", "gureum-1b"]
    # The control plane's client reaches the agent in the other netns over TLS.
    assert cluster.client_of(cluster.row()).vpc_routers() == []


def test_a_wrong_token_is_refused_and_logged(cluster: Cluster, tmp_path: Path) -> None:
    intruder = JoinedAgent(cluster.server, cluster.second.ns, tmp_path / "intruder",
                           name="intruder")
    intruder.data_dir.mkdir()
    refused = subprocess.run(intruder.command("gureum-join-not-the-token"), env=intruder.env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "403" in refused.stderr and "wrong join token" in refused.stderr
    log = (cluster.server.data_dir / "gureum.log").read_text()
    assert re.search(rf"host join refused: wrong join token from {SECOND} \(name 'intruder'\)", log)
    assert "intruder" not in cluster.hosts()
    intruder_prefix = Config(data_dir=intruder.data_dir).prefix
    tables = sh("nsenter", f"--net=/run/netns/{cluster.second.ns}", "nft", "list", "tables").stdout
    assert intruder_prefix not in tables  # a refused join leaves nothing on the host


def test_a_forged_agent_at_the_hosts_address_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    """The real agent stops; something else listens on its address and port with a
    certificate of another CA, then with one our CA issued for that address to someone
    else: the control plane's client refuses both. The real agent comes back (re-joins)."""
    row = cluster.row()
    cluster.agent.stop()
    for ca in (CloudCA(tmp_path / "other"), CloudCA(cluster.server.data_dir)):
        issued = ca.issue([SECOND])
        (tmp_path / "f.pem").write_text(issued.certificate_pem)
        (tmp_path / "f.key").write_text(issued.private_key_pem)
        forged = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{cluster.second.ns}", "openssl", "s_server", "-quiet",
             "-accept", f"{SECOND}:{cluster.agent.port}", "-cert", str(tmp_path / "f.pem"),
             "-key", str(tmp_path / "f.key"), "-www"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: sh("nsenter", f"--net=/run/netns/{cluster.second.ns}", "ss",
                                       "-ltn").stdout.count(f"{SECOND}:{cluster.agent.port}"), 5)
            with pytest.raises(AgentAuthFailed):
                cluster.client_of(row).vpc_routers()
        finally:
            forged.terminate()
            forged.wait(10)
    time.sleep(0.2)
    cluster.agent.start(cluster.token())  # the same name: the same host, a new certificate
    again = cluster.row()
    assert again.host_id == row.host_id and again.cert_fingerprint != row.cert_fingerprint
    with pytest.raises(AgentAuthFailed):  # without the host's secret, the agent says no
        cluster.client_of(again, secret="guessed").vpc_routers()
    assert cluster.client_of(again).vpc_routers() == []


def test_an_instance_placed_on_the_joined_host_runs_there(cluster: Cluster, tmp_path: Path) -> None:
    """A subnet in the joined host's zone: the instance is placed there, its network
    namespace is that host's (its prefix), and SSH reaches it from inside that host."""
    ec2 = cluster.server.client()
    key = tmp_path / "k.pem"
    key.write_text(ec2.create_key_pair(KeyName="join", KeyType="ed25519")["KeyMaterial"])
    key.chmod(0o600)
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    second_slice = vpc["CidrBlock"].replace(".0.0/16", ".16.0/20")
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=second_slice,
                               AvailabilityZone="gureum-1b")["Subnet"]["SubnetId"]
    instance_id = ec2.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="join",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet,
                            "AssociatePublicIpAddress": True}])["Instances"][0]["InstanceId"]
    try:
        from helpers import wait_state

        view = wait_state(ec2, instance_id, "running", timeout=90)
        assert view["Placement"]["AvailabilityZone"] == "gureum-1b"
        store = Store(Config(data_dir=cluster.server.data_dir).store_url)
        from gureum.store import models
        with store.read() as s:
            row = s.get(models.Instance, instance_id)
            assert row is not None and row.host_id == cluster.agent.host_id
        store.engine.dispose()
        # Its netns carries the joined host's prefix, not the control plane's.
        prefix2 = Config(data_dir=cluster.agent.data_dir).prefix
        netns = sh("ip", "netns", "list").stdout
        assert f"{prefix2}-{instance_id}" in netns
        assert f"{Config(data_dir=cluster.server.data_dir).prefix}-{instance_id}" not in netns
        public = view["PublicIpAddress"]
        login = sh("nsenter", f"--net=/run/netns/{cluster.second.ns}", "ssh", "-i", str(key),
                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"ec2-user@{public}",
                   "hostname", check=False, timeout=60)
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == "ip-" + view["PrivateIpAddress"].replace(".", "-")
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
        from helpers import wait_state
        wait_state(ec2, instance_id, "terminated", timeout=60)
    prefix2 = Config(data_dir=cluster.agent.data_dir).prefix
    assert f"{prefix2}-{instance_id}" not in sh("ip", "netns", "list").stdout
