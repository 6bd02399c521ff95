"""One contract suite, three agents: the FakeAgent of the fast tier, the real HostAgent
in this process, and the real agent behind `gureum agent` reached through RemoteAgent.
Whatever the control plane may rely on holds for all three."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import DNSRecord

from gureum.agent import idmap
from gureum.agent import image as image_mod
from gureum.agent.agent import HostAgent
from gureum.agent.client import RemoteAgent
from gureum.agent.contract import (
    AgentContract,
    Firewall,
    FirewallRule,
    GuestDns,
    IdentityDocument,
    InstanceMetadata,
    InstanceSpec,
    Limits,
    NetworkInterfaceSpec,
    RuntimeState,
    SegmentPeer,
    VpcNetwork,
    VpcServices,
    VxlanSegment,
)
from gureum.agent.fake import FakeAgent
from gureum.agent.network import DNS_ADDRESS, IMDS_ADDRESS, plan_for
from gureum.config import Config
from gureum.errors import AgentAuthFailed, AgentUnavailable, HostError
from gureum.testing import VENV_BIN, wait_for

IMAGE_CACHE = Path(os.environ.get("GUREUM_IMAGE_CACHE", "/var/cache/gureum/images"))
VPC = VpcNetwork("vpc-0c0ffee0c0ffee000", 7, "10.201.0.0/16", ("10.201.1.0/24",),
                 ("10.201.1.0/24",))


def make_config() -> Config:
    data_dir = Path(f"/var/tmp/gureum-contract-{secrets.token_hex(4)}")
    data_dir.mkdir(mode=0o755)
    return Config(data_dir=data_dir, image_cache=IMAGE_CACHE,
                  public_pool=f"127.{150 + secrets.randbelow(50)}.0.0/16",
                  uid_base=0x6000_0000 + secrets.randbelow(64) * 0x100_0000)


def spec(instance_id: str, slot: int, key: str | None = None) -> InstanceSpec:
    image = image_mod.default_image(IMAGE_CACHE)
    return InstanceSpec(
        instance_id=instance_id, slot=slot, vpc=VPC, subnet_cidr="10.201.1.0/24",
        private_ip=f"10.201.1.{10 + slot}", public_ip=None, hostname=f"ip-10-201-1-{10 + slot}",
        limits=Limits(1, 512, 512), volume_gib=1, image_root=image.rootfs, authorized_key=key,
        user_data=b"#!/bin/sh\necho contract-user-data\n",
        firewall=Firewall((FirewallRule("tcp", 22, 22, ("0.0.0.0/0",)),),
                          (FirewallRule("-1", -1, -1, ("0.0.0.0/0",)),), VPC.resolver))


# The router's own address on the subnet: a test inside the router netns asks from it.
CALLER = "10.201.1.1"
NAME = "ip-10-201-1-1.gureum-1.compute.internal"


def services(instance_id: str, tokens: str = "optional") -> VpcServices:
    meta = InstanceMetadata(
        instance_id=instance_id, http_tokens=tokens, hop_limit=1, endpoint_enabled=True,
        tree={"instance-id": instance_id, "placement": {"region": "gureum-1"}},
        identity=IdentityDocument(json.dumps({"instanceId": instance_id}), "sig", "p7"),
        user_data=b"#!/bin/sh\n")
    return VpcServices(vpc=VPC, instances={CALLER: meta}, dns_support=True,
                       zones=("gureum-1.compute.internal",),
                       records=((NAME, "A", CALLER),))


class AgentUnderTest:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.config: Config | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        if kind == "fake":
            self.agent: AgentContract = FakeAgent()
            return
        self.config = make_config()
        if not image_mod.is_built(image_mod.default_image(IMAGE_CACHE)):
            pytest.skip("default image not built")
        if kind == "real":
            self.agent = HostAgent(self.config)
            return
        self._start_process()

    def _start_process(self) -> None:
        assert self.config is not None
        socket_path = self.config.data_dir / "agent.sock"
        socket_path.unlink(missing_ok=True)
        env = {**os.environ, "GUREUM_DATA_DIR": str(self.config.data_dir),
               "GUREUM_PUBLIC_POOL": self.config.public_pool,
               "GUREUM_UID_BASE": str(self.config.uid_base)}
        self.proc = subprocess.Popen([str(VENV_BIN / "gureum"), "agent", "--socket",
                                      str(socket_path)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(socket_path.exists, 20), "gureum agent did not open its socket"
        self.agent = RemoteAgent(socket_path, plan_for(self.config),
                                 self.config.agent_token_path)

    # -- asking a VPC's listeners from inside its router (real agents) -----------------
    def router(self) -> str:
        assert self.config is not None
        return plan_for(self.config).router_path(VPC.vpc_id)

    def imds(self, path: str, token: bool = False) -> tuple[int, bytes]:
        def ask() -> tuple[int, bytes]:
            conn = http.client.HTTPConnection(IMDS_ADDRESS, 80, timeout=3,
                                              source_address=(CALLER, 0))
            try:
                headers = {}
                if token:
                    conn.request("PUT", "/latest/api/token", headers={
                        "X-aws-ec2-metadata-token-ttl-seconds": "60"})
                    headers["X-aws-ec2-metadata-token"] = conn.getresponse().read().decode()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()
        return idmap.in_netns(self.router(), ask)

    def dns(self, name: str, server: str) -> DNSRecord:
        def ask() -> DNSRecord:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(3)
                sock.bind((CALLER, 0))
                sock.sendto(DNSRecord.question(name).pack(), (server, 53))
                return DNSRecord.parse(sock.recv(4096))
        return idmap.in_netns(self.router(), ask)

    def served_instance(self) -> str | None:
        """The instance id the VPC's metadata service answers its caller with."""
        if isinstance(self.agent, FakeAgent):
            served = self.agent.served.get(VPC.vpc_id)
            meta = served.instances.get(CALLER) if served else None
            return meta.instance_id if meta else None
        try:
            status, body = self.imds("/latest/meta-data/instance-id", token=True)
        except ConnectionRefusedError:  # nothing listens
            return None
        return body.decode() if status == 200 else None

    def restart(self) -> None:
        """The agent process ends and starts again (remote only), nothing pushed since."""
        assert self.proc is not None and self.config is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._start_process()

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.config is not None:
            leftovers = {k: v for k, v in HostAgent(self.config).host_objects().items() if v}
            if not leftovers:
                shutil.rmtree(self.config.data_dir, ignore_errors=True)
            assert not leftovers, f"{self.kind} agent leaked {leftovers}"


@pytest.fixture(scope="module", params=["fake", "real", "remote"])
def under_test(request: pytest.FixtureRequest) -> Iterator[AgentUnderTest]:
    subject = AgentUnderTest(request.param)
    yield subject
    subject.close()


def test_lifecycle_is_idempotent_and_leaves_nothing(under_test: AgentUnderTest) -> None:
    agent = under_test.agent
    one = spec("i-0c0ffee0000000001", 1)
    agent.ensure_host_network()
    agent.ensure_vpc(VPC)
    agent.ensure_vpc(VPC)  # again: no change, no error
    assert VPC.vpc_id in agent.vpc_routers()
    agent.destroy(one)  # of nothing: fine
    agent.launch(one)
    assert wait_for(lambda: agent.ssh_ready(one), 60, 0.05)
    assert agent.status(one) == RuntimeState.RUNNING and agent.alive(one.instance_id)
    assert agent.instances()[one.instance_id] == RuntimeState.RUNNING
    agent.launch(one)  # running already: nothing changes
    assert agent.alive(one.instance_id)
    assert wait_for(lambda: agent.console_tail(one.instance_id, 4096) != b"", 10)
    assert agent.apply_firewalls({one.instance_id: one.firewall}) == {}  # type: ignore[dict-item]
    told = GuestDns(("corp.example",), ("10.201.0.2", "10.201.1.53"))
    agent.configure_dns(one.instance_id, one.slot, told)  # a DHCP options change, pushed
    if under_test.config is not None:  # the real ones: the guest's file says it
        resolv = under_test.config.instances_dir / one.instance_id / "rootfs/etc/resolv.conf"
        assert resolv.read_text() == told.resolv_conf()
    agent.trim_console(one.instance_id)

    agent.stop(one, False)
    agent.stop(one, False)
    assert not agent.alive(one.instance_id) and agent.status(one) == RuntimeState.ABSENT
    assert agent.instances().get(one.instance_id) == RuntimeState.ABSENT, "the disk stays"
    agent.launch(one)  # start after stop: same disk
    assert wait_for(lambda: agent.ssh_ready(one), 60, 0.05)

    agent.destroy(one)
    agent.destroy(one)
    assert one.instance_id not in agent.instances()
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_host_network()
    agent.remove_cgroup_parents()
    assert not any(agent.host_objects().values())


def test_sweep_removes_what_no_row_owns(under_test: AgentUnderTest) -> None:
    agent = under_test.agent
    orphan = spec("i-0c0ffee0000000002", 2)
    agent.ensure_host_network()
    agent.ensure_vpc(VPC)
    agent.launch(orphan)
    assert agent.sweep(["i-0c0ffee00000000ff"]) == []
    assert agent.sweep([orphan.instance_id]) == [orphan.instance_id]
    assert orphan.instance_id not in agent.instances()
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_host_network()
    agent.remove_cgroup_parents()
    assert not any(agent.host_objects().values())


def test_failures_are_host_errors(under_test: AgentUnderTest) -> None:
    agent = under_test.agent
    rules = Firewall((), (), None)
    # No such instance: said by the call's answer, by the class of the error
    failed = agent.apply_firewalls({"i-0c0ffee00000000aa": rules})
    assert list(failed) == ["i-0c0ffee00000000aa"]
    assert failed["i-0c0ffee00000000aa"].startswith("NetnsMissing: ")
    if under_test.kind != "fake":  # the real ones say which netns is missing
        assert "i-0c0ffee00000000aa" in failed["i-0c0ffee00000000aa"]


def test_vpc_services_are_served_replaced_and_go_with_the_vpc(under_test: AgentUnderTest) -> None:
    agent = under_test.agent
    agent.ensure_host_network()
    first = services("i-0c0ffee00000000a1")
    agent.serve_vpc(first)
    agent.serve_vpc(first)  # again: no change, no error
    assert VPC.vpc_id in agent.vpc_routers(), "serving a VPC builds its router"
    assert under_test.served_instance() == "i-0c0ffee00000000a1"
    if under_test.kind != "fake":
        assert under_test.imds("/latest/meta-data/placement/") == (200, b"region")
        assert under_test.imds("/latest/user-data") == (200, b"#!/bin/sh\n")
        assert under_test.imds("/latest/dynamic/instance-identity/signature") == (200, b"sig")
        for server in (VPC.resolver, DNS_ADDRESS):
            assert [str(rr.rdata) for rr in under_test.dns(NAME, server).rr] == [CALLER]
        assert under_test.dns("example.com", VPC.resolver).header.rcode == 5  # REFUSED

    # A push replaces what is served, at once.
    second = dataclasses.replace(services("i-0c0ffee00000000a2", tokens="required"),
                                 dns_support=False)
    agent.serve_vpc(second)
    assert under_test.served_instance() == "i-0c0ffee00000000a2"
    if under_test.kind != "fake":
        assert under_test.imds("/latest/meta-data/instance-id")[0] == 401  # v1 refused now
        assert under_test.dns(NAME, VPC.resolver).header.rcode == 5  # DNS support off
    if under_test.kind == "remote":  # a restarted agent answers before any new push
        under_test.restart()
        assert under_test.served_instance() == "i-0c0ffee00000000a2"

    # Removing the VPC takes its listeners and what they served; serving it again works.
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_vpc(VPC.vpc_id)
    assert VPC.vpc_id not in agent.vpc_routers()
    agent.ensure_vpc(VPC)
    assert under_test.served_instance() is None, "nothing served after removal"
    agent.serve_vpc(first)
    assert under_test.served_instance() == "i-0c0ffee00000000a1"
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_host_network()
    agent.remove_cgroup_parents()
    assert not any(agent.host_objects().values())


def test_one_instance_is_added_to_what_a_vpc_serves(under_test: AgentUnderTest) -> None:
    agent = under_test.agent
    agent.ensure_host_network()
    with pytest.raises(HostError):  # a VPC not served yet takes no single instance
        agent.serve_instance(VPC.vpc_id, CALLER, services("i-0c0ffee00000000b1").instances[CALLER])
    agent.serve_vpc(dataclasses.replace(services("i-0c0ffee00000000b1"), instances={}))
    assert under_test.served_instance() is None
    added = services("i-0c0ffee00000000b2").instances[CALLER]
    agent.serve_instance(VPC.vpc_id, CALLER, added)
    agent.serve_instance(VPC.vpc_id, CALLER, added)  # again: no change, no error
    assert under_test.served_instance() == "i-0c0ffee00000000b2"
    if under_test.kind != "fake":
        assert under_test.imds("/latest/user-data") == (200, b"#!/bin/sh\n")
    if under_test.kind == "remote":  # kept like a whole push: a restart still answers
        under_test.restart()
        assert under_test.served_instance() == "i-0c0ffee00000000b2"
    agent.serve_vpc(dataclasses.replace(services("i-0c0ffee00000000b1"), instances={}))
    assert under_test.served_instance() is None, "the next whole push replaces it"
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_host_network()
    agent.remove_cgroup_parents()
    assert not any(agent.host_objects().values())


def _segment_state(under_test: AgentUnderTest) -> dict:
    """What the host has of VPC's segment: device (VNI, port, local), fdb, neighbours,
    anti-spoof entries of its port, the host guard's rules."""
    agent = under_test.agent
    if isinstance(agent, FakeAgent):
        seg = agent.segments.get(VPC.vpc_id)
        return {} if seg is None else {"device": (seg.vni, seg.port, seg.local_address),
                                       "fdb": {(p.mac, p.host_address) for p in seg.peers},
                                       "neigh": {a for p in seg.peers for a in p.addresses}}
    assert under_test.config is not None
    plan = plan_for(under_test.config)
    router, name = plan.router(VPC.vpc_id), f"{plan.prefix}vx{VPC.index}"
    guard = subprocess.run(["nft", "list", "chain", "ip", plan.table, "vxlan_guard"],
                           capture_output=True, text=True).stdout
    out = subprocess.run(["ip", "-n", router, "-j", "-d", "link", "show", "type", "vxlan"],
                         capture_output=True, text=True).stdout
    links = json.loads(out or "[]")
    if not links:
        return {"guard": guard} if "@th" in guard else {}
    assert [link["ifname"] for link in links] == [name]
    data = links[0]["linkinfo"]["info_data"]
    assert data.get("proxy") and not data.get("learning") and links[0].get("master") == "br0"
    fdb = json.loads(subprocess.run(["bridge", "-n", router, "-j", "fdb", "show", "dev", name],
                                    capture_output=True, text=True).stdout or "[]")
    neigh = json.loads(subprocess.run(["ip", "-n", router, "-j", "neigh", "show", "dev", name],
                                      capture_output=True, text=True).stdout or "[]")
    ports = subprocess.run(["ip", "netns", "exec", router, "nft", "list", "set", "bridge",
                            "gureum", "port_addresses"], capture_output=True, text=True).stdout
    assert {e["dst"] for e in neigh} == {a for a in ("10.201.2.5", "10.201.2.6") if a in ports}
    return {"device": (data["id"], data["port"], data["local"]),
            "fdb": {(e["mac"], e["dst"]) for e in fdb if e.get("dst")},
            "neigh": {e["dst"] for e in neigh}, "guard": guard}


def test_vpc_segments_are_made_kept_and_removed(under_test: AgentUnderTest) -> None:
    """A VPC's VXLAN segment: made in its router, idempotent, entries replaced when a peer
    moves or loses an address, gone with an empty segment and with the router. Loopback
    underlay only: nothing here is sent anywhere."""
    agent = under_test.agent
    agent.ensure_host_network()
    peer = SegmentPeer("0e:31:0a:c9:02:05", ("10.201.2.5", "10.201.2.6"), "127.0.0.2")
    segment = VxlanSegment(0xABC007, 47890, "127.0.0.1", (peer,))
    agent.sync_vpc_peers(VPC, segment)
    agent.sync_vpc_peers(VPC, segment)  # again: no change, no error
    assert VPC.vpc_id in agent.vpc_routers(), "a segment builds its router"
    state = _segment_state(under_test)
    assert state["device"] == (0xABC007, 47890, "127.0.0.1")
    assert state["fdb"] == {("0e:31:0a:c9:02:05", "127.0.0.2")}
    assert state["neigh"] == {"10.201.2.5", "10.201.2.6"}
    if under_test.kind != "fake":
        assert "@th,96,24 0xabc007 ip saddr != 127.0.0.2 drop" in state["guard"]
    # The peer moved to another host and lost an address.
    moved = dataclasses.replace(segment, peers=(SegmentPeer(peer.mac, ("10.201.2.5",), "127.0.0.3"),))
    agent.sync_vpc_peers(VPC, moved)
    state = _segment_state(under_test)
    assert state["fdb"] == {("0e:31:0a:c9:02:05", "127.0.0.3")}
    assert state["neigh"] == {"10.201.2.5"}
    if under_test.kind != "fake":
        assert "ip saddr != 127.0.0.3 drop" in state["guard"]
    # No peers: the device and its guard go; the router stays.
    agent.sync_vpc_peers(VPC, VxlanSegment(segment.vni, segment.port, segment.local_address))
    assert _segment_state(under_test) == {}
    assert VPC.vpc_id in agent.vpc_routers()
    assert agent.host_objects()["vxlan_devices"] == []
    # With the router, the device goes too.
    agent.sync_vpc_peers(VPC, segment)
    assert agent.host_objects()["vxlan_devices"]
    agent.remove_vpc(VPC.vpc_id)
    assert _segment_state(under_test) == {}
    agent.remove_host_network()
    agent.remove_cgroup_parents()
    assert not any(agent.host_objects().values())


def test_remote_agent_refuses_a_wrong_token_and_reports_absence(under_test: AgentUnderTest) -> None:
    if under_test.kind != "remote":
        pytest.skip("remote agent only")
    real = under_test.agent
    assert isinstance(real, RemoteAgent)
    bad_token = Path(real.socket_path).parent / "wrong.token"
    bad_token.write_text("not-the-token\n")
    with pytest.raises(AgentAuthFailed):
        RemoteAgent(Path(real.socket_path), real.plan, bad_token).vpc_routers()
    gone = Path(real.socket_path).parent / "nobody.sock"
    with pytest.raises(AgentUnavailable):
        RemoteAgent(gone, real.plan, bad_token).vpc_routers()


def test_interfaces_beyond_eth0_come_and_go(under_test: AgentUnderTest) -> None:
    """An attached interface is an eth1 with its addresses, eth0 gets secondary addresses,
    and a launch (start after stop) makes them again; nothing stays behind."""
    agent = under_test.agent
    base = spec("i-0c0ffee0000000003", 3)
    attached = dataclasses.replace(
        base, secondary_ips=("10.201.1.200",),
        interfaces=(NetworkInterfaceSpec(1, "10.201.2.0/24", ("10.201.2.10", "10.201.2.11")),))
    agent.ensure_host_network()
    agent.ensure_vpc(VPC)
    agent.launch(base)
    assert wait_for(lambda: agent.ssh_ready(base), 60, 0.05)
    assert agent.interface_addresses(base.instance_id) == {"eth0": ["10.201.1.13"]}
    agent.sync_interfaces(attached)
    agent.sync_interfaces(attached)  # again: no change, no error
    wanted = {"eth0": ["10.201.1.13", "10.201.1.200"], "eth1": ["10.201.2.10", "10.201.2.11"]}
    assert agent.interface_addresses(base.instance_id) == wanted
    fewer = dataclasses.replace(attached, interfaces=(
        NetworkInterfaceSpec(1, "10.201.2.0/24", ("10.201.2.10",)),))
    agent.sync_interfaces(fewer)
    assert agent.interface_addresses(base.instance_id)["eth1"] == ["10.201.2.10"]
    agent.stop(fewer, False)
    assert agent.interface_addresses(base.instance_id) == {}
    agent.launch(fewer)  # start: the interfaces are made with the instance
    assert wait_for(lambda: agent.ssh_ready(fewer), 60, 0.05)
    assert agent.interface_addresses(base.instance_id) == {
        "eth0": ["10.201.1.13", "10.201.1.200"], "eth1": ["10.201.2.10"]}
    agent.sync_interfaces(base)  # detached, secondary address unassigned
    assert agent.interface_addresses(base.instance_id) == {"eth0": ["10.201.1.13"]}
    agent.sync_interfaces(fewer)
    agent.destroy(fewer)
    agent.remove_vpc(VPC.vpc_id)
    agent.remove_host_network()
    agent.remove_cgroup_parents()
    assert not any(agent.host_objects().values())


def test_a_volume_file_moves_piece_by_piece(under_test: AgentUnderTest) -> None:
    """read_stored / write_stored (issue #13: volumes move between hosts): what is read
    comes back whole under another name; a missing file is a HostError."""
    from gureum.agent.contract import StoredChunk

    agent = under_test.agent
    source, copy = "vol-0c0ffee0000000001", "vol-0c0ffee0000000002"
    agent.create_volume(source, 1, None)

    def pieces(name: str) -> list[StoredChunk]:
        out, offset = [], 0
        while True:
            chunk = agent.read_stored(name, offset, 1024 * 1024)
            out.append(chunk)
            if chunk.end:
                return out
            offset = chunk.offset + len(chunk.data)

    try:
        read = pieces(source)
        assert read[-1].end and sum(len(c.data) for c in read) > 0
        for n, chunk in enumerate(read):
            agent.write_stored(copy, chunk, n == 0)
        assert [(c.offset, c.data) for c in pieces(copy)] == [(c.offset, c.data) for c in read]
        with pytest.raises(HostError):
            agent.read_stored("vol-0c0ffee0000000003", 0, 1024)
    finally:
        agent.delete_volume(copy)
        agent.delete_volume(source)
        agent.remove_host_network()  # and the volume store's mount: no instance is left
