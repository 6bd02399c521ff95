"""VPCs across hosts (issue #13): the control plane gives every host holding instances of
a VPC that spans hosts one VXLAN segment (`sync_vpc_peers`): the VPC's VNI, the tunnel
port, the host's own address and every interface of the VPC on the other hosts (MAC,
addresses, that host's address), kept in step as instances come and go, and removed
when the VPC no longer spans the host. Two FakeAgent hosts joined over the real TLS
listener, each on its own loopback address, beside the control host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from test_hosts import cloud as cloud  # noqa: PLC0414  (the module's own cloud)

from gureum.agent.contract import VxlanSegment
from gureum.agent.fake import FakeAgent
from gureum.agent.network import mac_for
from gureum.controllers.segments import vni
from gureum.hosts import registry
from gureum.hosts.join import Capacity, JoinedHost, join_and_serve
from gureum.store import models
from gureum.store.host_models import Host
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state

ADDRESSES = {"seg-h1": "127.0.0.11", "seg-h2": "127.0.0.12"}


@pytest.fixture(scope="module")
def hosts(cloud: FastCloud) -> Iterator[dict[str, tuple[JoinedHost, FakeAgent]]]:
    """Two joined hosts in gureum-1b, reached at (and registered with) their own address."""
    token = registry.join_token(cloud.cloud.store, cloud.config)
    joined = {}
    for name, address in ADDRESSES.items():
        agent = FakeAgent()
        joined[name] = (join_and_serve(agent, cloud.data_dir / f"pki-{name}", cloud.endpoint,
                                       token, name, "gureum-1b", (address, 0), None,
                                       Capacity(8, 16384, 100), cloud.cloud.ca.cert_path), agent)
    yield joined
    for host, _ in joined.values():
        host.stop()


def _vpc(cloud: FastCloud, cidr: str) -> tuple[str, str, str]:
    """A VPC with a subnet in each zone: (VPC, subnet of the control host, of the others)."""
    ec2 = cloud.client()
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24",
                          AvailabilityZone="gureum-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.2.0/24",
                          AvailabilityZone="gureum-1b")["Subnet"]["SubnetId"]
    return vpc, a, b


def _run(cloud: FastCloud, subnet: str, count: int = 1) -> list[str]:
    ec2 = cloud.client()
    image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    out = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=count,
                            MaxCount=count, SubnetId=subnet)
    ids = [i["InstanceId"] for i in out["Instances"]]
    for instance_id in ids:
        wait_state(ec2, instance_id, "running")
    return ids


def _where(cloud: FastCloud, ids: list[str]) -> dict[str, tuple[str, str]]:
    """instance -> (its host's address, its private address)."""
    with cloud.cloud.store.read() as s:
        address = {h.host_id: h.address for h in s.scalars(select(Host))}
        rows = s.scalars(select(models.Instance).where(models.Instance.instance_id.in_(ids)))
        return {r.instance_id: (address[r.host_id or cloud.cloud.control_host_id], r.private_ip)
                for r in rows}


def _peers(segment: VxlanSegment | None) -> set[tuple[str, tuple[str, ...], str]]:
    return set() if segment is None else {(p.mac, p.addresses, p.host_address)
                                          for p in segment.peers}


def _expected(where: dict[str, tuple[str, str]], host: str,
              extra: dict[str, tuple[str, ...]] | None = None) -> set[tuple[str, tuple[str, ...], str]]:
    """The peers a host should see: every instance on another host."""
    extra = extra or {}
    return {(mac_for(ip), (ip, *extra.get(i, ())), addr) for i, (addr, ip) in where.items()
            if addr != host}


def _net_index(cloud: FastCloud, vpc_id: str) -> int:
    with cloud.cloud.store.read() as s:
        row = s.get(models.Vpc, vpc_id)
        assert row is not None
        return row.net_index


def test_segments_follow_instances_across_hosts(cloud: FastCloud, hosts) -> None:  # noqa: ANN001
    ec2 = cloud.client()
    control = cloud.agent
    control_address = cloud.config.host
    agents = {ADDRESSES[name]: agent for name, (_, agent) in hosts.items()}
    agents[control_address] = control
    vpc, subnet_a, subnet_b = _vpc(cloud, "10.71.0.0/16")
    # One instance on the control host alone: nothing spans hosts, no segment anywhere.
    on_control = _run(cloud, subnet_a)
    assert not wait_for(lambda: any(vpc in a.segments for a in agents.values()), 0.5)
    # Two more on the joined hosts (placement spreads them): every host of the VPC gets
    # the others' interfaces, with the same VNI and port.
    joined = _run(cloud, subnet_b, count=2)
    where = _where(cloud, on_control + joined)
    assert {addr for addr, _ in where.values()} == {control_address, *ADDRESSES.values()}
    for address, agent in agents.items():
        assert wait_for(lambda a=agent, h=address: _peers(a.segments.get(vpc))
                        == _expected(where, h), 5), (address, agent.segments.get(vpc))
        segment = agent.segments[vpc]
        assert segment.local_address == address
        assert (segment.vni, segment.port) == (vni(cloud.config, _net_index(cloud, vpc)), 4789)
        assert any(call == ("sync_vpc_peers", vpc) for call in agent.calls)
    # A secondary address of an instance on a joined host reaches the others' entries.
    eni = ec2.describe_instances(InstanceIds=[joined[0]])["Reservations"][0]["Instances"][0][
        "NetworkInterfaces"][0]["NetworkInterfaceId"]
    second = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)[
        "AssignedPrivateIpAddresses"][0]["PrivateIpAddress"]
    extra = {joined[0]: (second,)}
    assert wait_for(lambda: _peers(control.segments.get(vpc))
                    == _expected(where, control_address, extra), 5)
    # A second VPC with the same CIDR over the same hosts is another segment: another VNI.
    other, other_a, other_b = _vpc(cloud, "10.71.0.0/16")
    other_ids = _run(cloud, other_a) + _run(cloud, other_b)
    assert wait_for(lambda: other in control.segments, 5)
    assert control.segments[other].vni != control.segments[vpc].vni
    assert _peers(control.segments[other]) == _expected(_where(cloud, other_ids), control_address)
    # An instance whose row moves to the other joined host (as a drain's move would make
    # it): every other host's entry for its MAC now points there.
    moved = joined[0]
    with cloud.cloud.store.read() as s:
        hosts_by_address = {h.address: h.host_id for h in s.scalars(select(Host))}
        old_host = s.get(models.Instance, moved).host_id
    new_address = next(a for a in ADDRESSES.values() if a != where[moved][0])
    with cloud.cloud.store.write() as s:
        row = s.get(models.Instance, moved)
        row.host_id = hosts_by_address[new_address]
    where[moved] = (new_address, where[moved][1])
    assert wait_for(lambda: _peers(control.segments.get(vpc))
                    == _expected(where, control_address, extra), 5)
    with cloud.cloud.store.write() as s:  # back where it runs
        s.get(models.Instance, moved).host_id = old_host
    where[moved] = (next(a for a, h in hosts_by_address.items() if h == old_host), where[moved][1])
    assert wait_for(lambda: _peers(control.segments.get(vpc))
                    == _expected(where, control_address, extra), 5)
    # Terminating the instance of one joined host takes its entries off every other host.
    gone = joined[1]
    gone_host = where.pop(gone)[0]
    ec2.terminate_instances(InstanceIds=[gone])
    wait_state(ec2, gone, "terminated")
    for address, agent in agents.items():
        if address == gone_host:  # it holds nothing of the VPC any more: its device goes
            assert wait_for(lambda a=agent: vpc not in a.segments, 5)
        else:
            assert wait_for(lambda a=agent, h=address: _peers(a.segments.get(vpc))
                            == _expected(where, h, extra), 5), address
    # Stopping the control host's one: the VPC spans no hosts, no segment is left.
    ec2.stop_instances(InstanceIds=on_control)
    wait_state(ec2, on_control[0], "stopped")
    assert wait_for(lambda: all(vpc not in a.segments for a in agents.values()), 5)
    ec2.terminate_instances(InstanceIds=on_control + joined[:1] + other_ids)
    for instance_id in on_control + joined[:1] + other_ids:
        wait_state(ec2, instance_id, "terminated")
    assert wait_for(lambda: all(not a.segments for a in agents.values()), 5)
    for agent in agents.values():
        assert agent.host_objects()["vxlan_devices"] == []


def test_a_restarted_control_plane_removes_segments_it_did_not_push(
        cloud: FastCloud, hosts) -> None:  # noqa: ANN001
    """A device left on a host (by an earlier control plane) for a VPC that spans no hosts
    now is removed on the first pass that meets the host."""
    from gureum.agent.contract import SegmentPeer

    ec2 = cloud.client()
    vpc, subnet_a, _ = _vpc(cloud, "10.72.0.0/16")
    ids = _run(cloud, subnet_a)
    agent = cloud.agent
    agent.segments[vpc] = VxlanSegment(1, 4789, cloud.config.host,
                                       (SegmentPeer("0e:31:0a:48:02:04", ("10.72.2.4",), "127.0.0.11"),))
    loop = cloud.cloud.network_controller.segments
    with loop.lock:
        loop.known.clear()  # as if this process had just started
    loop.changed()
    assert wait_for(lambda: vpc not in agent.segments, 5)
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids[0], "terminated")
