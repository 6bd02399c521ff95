"""Placement across hosts (issue #13): RunInstances puts each instance on a host of the
subnet's zone that is active and has room, spreading an Auto Scaling group or placement
group and preferring free memory; drain refuses new placements; no room is
InsufficientInstanceCapacity in AWS's words; placement groups (spread, cluster); the
controllers drive each instance on its own host's agent (FakeAgents behind the real TLS
listener)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select
from test_hosts import _cli, _join
from test_hosts import cloud as cloud  # noqa: PLC0414  (the module's own cloud)

from gureum.agent.fake import FakeAgent
from gureum.hosts import registry
from gureum.hosts.join import JoinedHost
from gureum.store import models
from gureum.testing_inprocess import FastCloud, wait_state


@pytest.fixture(scope="module")
def zone_b(cloud: FastCloud) -> Iterator[dict[str, tuple[JoinedHost, FakeAgent]]]:
    """Two joined hosts in gureum-1b (the control host is in gureum-1a)."""
    hosts = {name: _join(cloud, name, zone="gureum-1b") for name in ("b-host1", "b-host2")}
    yield hosts
    for joined, _ in hosts.values():
        joined.stop()


@pytest.fixture(scope="module")
def subnet_b(cloud: FastCloud, zone_b) -> str:  # noqa: ANN001
    ec2 = cloud.client()
    vpc = ec2.create_vpc(CidrBlock="10.62.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="10.62.1.0/24",
                             AvailabilityZone="gureum-1b")["Subnet"]["SubnetId"]


@pytest.fixture(scope="module")
def image(cloud: FastCloud) -> str:
    return cloud.client().describe_images(Owners=["gureum"])["Images"][0]["ImageId"]


def _host_of(cloud: FastCloud, instance_id: str) -> str | None:
    with cloud.cloud.store.read() as s:
        return s.scalar(select(models.Instance.host_id).where(
            models.Instance.instance_id == instance_id))


def _names(cloud: FastCloud) -> dict[str, str]:
    from gureum.store.host_models import Host
    with cloud.cloud.store.read() as s:
        return {h.host_id: h.name for h in s.scalars(select(Host))}


def _run(cloud: FastCloud, image: str, subnet: str, count: int = 1, **extra) -> list[str]:  # noqa: ANN003
    out = cloud.client().run_instances(ImageId=image, InstanceType="t3.micro", MinCount=count,
                                       MaxCount=count, SubnetId=subnet, **extra)
    return [i["InstanceId"] for i in out["Instances"]]


def _terminate(cloud: FastCloud, ids: list[str]) -> None:
    ec2 = cloud.client()
    ec2.terminate_instances(InstanceIds=ids)
    for instance_id in ids:
        wait_state(ec2, instance_id, "terminated")


def test_instances_run_on_the_hosts_of_their_zone_and_spread(
        cloud: FastCloud, zone_b, subnet_b: str, image: str) -> None:  # noqa: ANN001
    ec2 = cloud.client()
    ids = _run(cloud, image, subnet_b, count=4)
    names = _names(cloud)
    placed = [names[_host_of(cloud, i) or ""] for i in ids]
    assert sorted(placed) == ["b-host1", "b-host1", "b-host2", "b-host2"]  # free memory
    with cloud.cloud.store.read() as s:  # slots (ports, uid ranges) are per host
        slots = {(r.host_id, r.slot) for r in s.scalars(select(models.Instance).where(
            models.Instance.instance_id.in_(ids)))}
    assert len(slots) == 4 and {slot for _, slot in slots} == {1, 2}
    for instance_id in ids:
        wait_state(ec2, instance_id, "running")
    for instance_id, name in zip(ids, placed, strict=True):
        agent = zone_b[name][1]
        assert instance_id in agent.instances_  # launched by that host's agent
        assert instance_id not in cloud.agent.instances_  # not by the control host's
        view = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        assert view["Placement"]["AvailabilityZone"] == "gureum-1b"
    # A stopped instance starts again on its own host.
    first, host = ids[0], _host_of(cloud, ids[0])
    ec2.stop_instances(InstanceIds=[first])
    wait_state(ec2, first, "stopped")
    ec2.start_instances(InstanceIds=[first])
    wait_state(ec2, first, "running")
    assert _host_of(cloud, first) == host
    assert zone_b[placed[0]][1].boots[first] == 2
    # The default subnet's zone is the control host's.
    default = _run(cloud, image, cloud.client().describe_subnets(Filters=[
        {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"])
    assert _host_of(cloud, default[0]) == cloud.cloud.control_host_id
    wait_state(ec2, default[0], "running")
    assert default[0] in cloud.agent.instances_
    # A host holding instances cannot be removed.
    assert _cli(cloud, "host", "remove", "b-host1") == 1
    _terminate(cloud, ids + default)
    for name, (_, agent) in zone_b.items():
        assert not set(ids) & set(agent.instances_), name


def test_drain_refuses_new_placements(cloud: FastCloud, zone_b, subnet_b: str,
                                      image: str) -> None:  # noqa: ANN001
    assert _cli(cloud, "host", "drain", "b-host1") == 0
    try:
        ids = _run(cloud, image, subnet_b, count=3)
        assert {_names(cloud)[_host_of(cloud, i) or ""] for i in ids} == {"b-host2"}
        assert _cli(cloud, "host", "drain", "b-host2") == 0
        with pytest.raises(ClientError) as err:
            _run(cloud, image, subnet_b)
        error = err.value.response["Error"]
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert error["Code"] == "InsufficientInstanceCapacity"
        assert error["Message"] == (
            "We currently do not have sufficient t3.micro capacity in the Availability Zone "
            "you requested (gureum-1b). Our system will be working on provisioning additional "
            "capacity. You can currently get t3.micro capacity by not specifying an "
            "Availability Zone in your request or choosing gureum-1a.")
        _terminate(cloud, ids)
    finally:
        assert _cli(cloud, "host", "undrain", "b-host1") == 0
        assert _cli(cloud, "host", "undrain", "b-host2") == 0


def test_reserved_capacity_runs_out(cloud: FastCloud, zone_b, subnet_b: str,
                                    image: str) -> None:  # noqa: ANN001
    """With reservations on, a host full of memory takes no more (each has 16 GiB)."""
    cloud.config.placement_reserves = True
    try:
        ec2 = cloud.client()
        big = ec2.run_instances(ImageId=image, InstanceType="r5.large", MinCount=2, MaxCount=2,
                                SubnetId=subnet_b)["Instances"]  # 16 GiB each
        ids = [i["InstanceId"] for i in big]
        assert {_host_of(cloud, i) for i in ids} == {j.host_id for j, _ in zone_b.values()}
        with pytest.raises(ClientError) as err:
            ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                              SubnetId=subnet_b)
        assert err.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
        # MaxCount beyond the room: as many as fit (MinCount 0 of them here is refused).
        _terminate(cloud, ids)
        fitted = ec2.run_instances(ImageId=image, InstanceType="r5.large", MinCount=1,
                                   MaxCount=5, SubnetId=subnet_b)["Instances"]
        assert len(fitted) == 2
        _terminate(cloud, [i["InstanceId"] for i in fitted])
    finally:
        cloud.config.placement_reserves = False


def test_placement_groups(cloud: FastCloud, zone_b, subnet_b: str, image: str) -> None:  # noqa: ANN001
    ec2 = cloud.client()
    spread = ec2.create_placement_group(GroupName="web", Strategy="spread")["PlacementGroup"]
    assert (spread["GroupName"], spread["Strategy"], spread["State"]) == ("web", "spread",
                                                                          "available")
    assert spread["GroupId"].startswith("pg-")
    ec2.create_placement_group(GroupName="db", Strategy="cluster", TagSpecifications=[
        {"ResourceType": "placement-group", "Tags": [{"Key": "tier", "Value": "db"}]}])
    for bad, code in (({"GroupName": "web", "Strategy": "spread"},
                       "InvalidPlacementGroup.Duplicate"),
                      ({"GroupName": "p", "Strategy": "partition"}, "InvalidParameterValue")):
        with pytest.raises(ClientError) as err:
            ec2.create_placement_group(**bad)
        assert err.value.response["Error"]["Code"] == code
    listed = ec2.describe_placement_groups()["PlacementGroups"]
    assert {g["GroupName"]: g["Strategy"] for g in listed} == {"web": "spread", "db": "cluster"}
    assert [g["GroupName"] for g in ec2.describe_placement_groups(Filters=[
        {"Name": "tag:tier", "Values": ["db"]}])["PlacementGroups"]] == ["db"]
    with pytest.raises(ClientError) as err:
        ec2.describe_placement_groups(GroupNames=["nope"])
    assert err.value.response["Error"]["Code"] == "InvalidPlacementGroup.Unknown"

    # spread: one instance per host; a third has nowhere to go.
    web = _run(cloud, image, subnet_b, count=2, Placement={"GroupName": "web"})
    assert len({_host_of(cloud, i) for i in web}) == 2
    with pytest.raises(ClientError) as err:
        _run(cloud, image, subnet_b, Placement={"GroupName": "web"})
    assert err.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    view = ec2.describe_instances(InstanceIds=[web[0]])["Reservations"][0]["Instances"][0]
    assert view["Placement"]["GroupName"] == "web"
    assert view["Placement"]["GroupId"] == spread["GroupId"]
    # cluster: all on the host its first instance got, across calls too.
    db = _run(cloud, image, subnet_b, count=3, Placement={"GroupName": "db"})
    db += _run(cloud, image, subnet_b, Placement={"GroupName": "db"})
    assert len({_host_of(cloud, i) for i in db}) == 1
    with pytest.raises(ClientError) as err:
        _run(cloud, image, subnet_b, Placement={"GroupName": "elsewhere"})
    assert err.value.response["Error"]["Code"] == "InvalidPlacementGroup.Unknown"
    with pytest.raises(ClientError) as err:
        ec2.delete_placement_group(GroupName="web")
    assert err.value.response["Error"]["Code"] == "InvalidPlacementGroup.InUse"
    _terminate(cloud, web + db)
    ec2.delete_placement_group(GroupName="web")
    ec2.delete_placement_group(GroupName="db")
    with pytest.raises(ClientError) as err:
        ec2.delete_placement_group(GroupName="web")
    assert err.value.response["Error"]["Code"] == "InvalidPlacementGroup.Unknown"
    assert ec2.describe_placement_groups()["PlacementGroups"] == []


def test_an_auto_scaling_group_spreads_across_hosts(cloud: FastCloud, zone_b, subnet_b: str,
                                                    image: str) -> None:  # noqa: ANN001
    ec2, asg = cloud.client(), cloud.client("autoscaling")
    # Unequal free memory: without spread, every instance would go to the emptier host.
    filler = cloud.client().run_instances(ImageId=image, InstanceType="r5.large", MinCount=1,
                                          MaxCount=1, SubnetId=subnet_b)["Instances"][0]
    ec2.create_launch_template(LaunchTemplateName="spread", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(AutoScalingGroupName="spread", MinSize=4, MaxSize=4,
                                  LaunchTemplate={"LaunchTemplateName": "spread"},
                                  VPCZoneIdentifier=subnet_b)
    try:
        from gureum.testing import wait_for

        def members() -> list[str]:
            groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["spread"])
            return [i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"]]

        assert wait_for(lambda: len(members()) == 4, 30)
        per_host: dict[str | None, int] = {}
        for instance_id in members():
            key = _host_of(cloud, instance_id)
            per_host[key] = per_host.get(key, 0) + 1
        assert sorted(per_host.values()) == [2, 2], per_host
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="spread", ForceDelete=True)
        from gureum.testing import wait_for
        assert wait_for(lambda: not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["spread"])["AutoScalingGroups"], 60)
        _terminate(cloud, [filler["InstanceId"]])


def test_a_lost_host_impairs_its_instances_and_its_group_members_are_replaced(
        cloud: FastCloud, zone_b, subnet_b: str, image: str) -> None:  # noqa: ANN001
    """Issue #13, host loss: a host that stops heartbeating is lost; its instances report
    an impaired system status; Auto Scaling replaces its group's member in another zone
    (the lost host's zone has no capacity left); a plain instance stays as it is. When the
    host returns, what the store ended meanwhile is swept there at once and the plain
    instance is `ok` again."""
    from gureum.store.host_models import Host
    from gureum.testing import wait_for

    ec2, asg = cloud.client(), cloud.client("autoscaling")
    joined, agent = _join(cloud, "c-host", zone="gureum-1c")
    vpc = ec2.describe_subnets(SubnetIds=[subnet_b])["Subnets"][0]["VpcId"]
    subnet_c = ec2.create_subnet(VpcId=vpc, CidrBlock="10.62.3.0/24",
                                 AvailabilityZone="gureum-1c")["Subnet"]["SubnetId"]
    plain = _run(cloud, image, subnet_c)[0]
    ec2.create_launch_template(LaunchTemplateName="survivor", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(AutoScalingGroupName="survivor", MinSize=2, MaxSize=2,
                                  LaunchTemplate={"LaunchTemplateName": "survivor"},
                                  VPCZoneIdentifier=f"{subnet_c},{subnet_b}")

    def members() -> dict[str, str]:
        group = asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["survivor"])["AutoScalingGroups"][0]
        return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}

    def status(instance_id: str) -> dict:
        return ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"][0]

    try:
        assert wait_for(lambda: list(members().values()) == ["InService"] * 2, 30)
        doomed = next(i for i in members() if _host_of(cloud, i) == joined.host_id)
        wait_state(ec2, plain, "running")
        assert status(plain)["SystemStatus"]["Status"] == "ok"

        joined.stop()  # the host dies: no more heartbeats, its agent gone
        with cloud.cloud.store.write() as s:  # silent for longer than LOST_AFTER_SECONDS
            s.get(Host, joined.host_id).last_heartbeat = models.utcnow() - dt.timedelta(
                seconds=registry.LOST_AFTER_SECONDS + 1)
        assert wait_for(lambda: status(plain)["SystemStatus"]["Status"] == "impaired", 10)
        impaired = status(plain)
        assert impaired["SystemStatus"]["Details"][0]["Status"] == "failed"
        assert "ImpairedSince" in impaired["SystemStatus"]["Details"][0]
        assert impaired["InstanceStatus"]["Status"] == "insufficient-data"
        assert impaired["InstanceState"]["Name"] == "running"  # as on EC2: still running
        impaired_ids = [s["InstanceId"] for s in ec2.describe_instance_status(Filters=[
            {"Name": "system-status.status", "Values": ["impaired"]}])["InstanceStatuses"]]
        assert plain in impaired_ids  # with the group's member, until it is replaced
        assert {_host_of(cloud, i) for i in impaired_ids} == {joined.host_id}

        # The member on the lost host is replaced on a live host of the group's other zone.
        assert wait_for(lambda: doomed not in members() and len(members()) == 2 and all(
            s == "InService" for s in members().values()), 30), members()
        assert all(_host_of(cloud, i) != joined.host_id for i in members())
        wait_state(ec2, doomed, "terminated")  # ended in the store without its agent
        causes = [a["Cause"] for a in asg.describe_scaling_activities(
            AutoScalingGroupName="survivor")["Activities"]]
        assert any("EC2 instance status checks failure" in c for c in causes), causes
        assert doomed in agent.instances()  # the dead host still "holds" it

        # The host comes back (joins again, same agent and what it held).
        back, _ = _join(cloud, "c-host", zone="gureum-1c", agent=agent)
        try:
            assert back.host_id == joined.host_id
            assert wait_for(lambda: doomed not in agent.instances(), 15), agent.instances()
            assert wait_for(lambda: status(plain)["SystemStatus"]["Status"] == "ok", 15)
            assert plain in agent.instances()
        finally:
            _terminate(cloud, [plain])
            back.stop()
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="survivor", ForceDelete=True)
        assert wait_for(lambda: not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["survivor"])["AutoScalingGroups"], 60)


def test_volumes_live_on_a_host_and_follow_their_instance(
        cloud: FastCloud, zone_b, subnet_b: str, image: str) -> None:  # noqa: ANN001
    """Issue #13: EBS across hosts. A volume is made on a host of its zone, moves to its
    instance's host when attached (the old copy goes), its snapshot is taken there, and a
    volume made from that snapshot in another zone gets the snapshot moved to its host."""
    from gureum.store.ebs_models import Snapshot, Volume
    from gureum.testing import wait_for

    ec2 = cloud.client()
    (_, agent1), (_, agent2) = zone_b["b-host1"], zone_b["b-host2"]
    ids = {name: hid for hid, name in _names(cloud).items()}

    def volume_state(vid: str) -> str:
        return ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"]

    def where(model: type, key: str) -> str | None:
        with cloud.cloud.store.read() as s:
            return s.get(model, key).host_id

    vid = ec2.create_volume(AvailabilityZone="gureum-1b", Size=2)["VolumeId"]
    assert wait_for(lambda: volume_state(vid) == "available", 10)
    assert where(Volume, vid) == ids["b-host1"] and vid in agent1.volumes
    assert _cli(cloud, "host", "drain", "b-host1") == 0  # the instance goes to b-host2
    try:
        iid = _run(cloud, image, subnet_b)[0]
    finally:
        assert _cli(cloud, "host", "undrain", "b-host1") == 0
    wait_state(ec2, iid, "running")
    assert _host_of(cloud, iid) == ids["b-host2"]
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0][
        "Attachments"][0]["State"] == "attached", 10)
    assert where(Volume, vid) == ids["b-host2"]
    assert vid in agent2.volumes and vid not in agent1.volumes
    assert agent2.mounted[vid] == (iid, "/dev/sdf")

    snap = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    assert where(Snapshot, snap) == ids["b-host2"] and snap in agent2.snapshots
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap],
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    copy = ec2.create_volume(AvailabilityZone="gureum-1a", SnapshotId=snap)["VolumeId"]
    assert wait_for(lambda: volume_state(copy) == "available", 10)
    control = cloud.cloud.agent
    assert where(Snapshot, snap) in (None, cloud.cloud.control_host_id)
    assert snap in control.snapshots and snap not in agent2.snapshots
    assert copy in control.volumes

    # A zone no host declares is not a zone; one whose hosts are all away has no room.
    with pytest.raises(ClientError) as err:
        ec2.create_volume(AvailabilityZone="gureum-1z", Size=1)
    assert err.value.response["Error"]["Code"] == "InvalidZone.NotFound"

    ec2.detach_volume(VolumeId=vid)
    assert wait_for(lambda: volume_state(vid) == "available", 10)
    for volume in (vid, copy):
        ec2.delete_volume(VolumeId=volume)
    ec2.delete_snapshot(SnapshotId=snap)
    assert wait_for(lambda: vid not in agent2.volumes and copy not in control.volumes
                    and snap not in control.snapshots, 10)
    _terminate(cloud, [iid])


def test_drain_moves_stopped_instances_and_their_disks(
        cloud: FastCloud, zone_b, subnet_b: str, image: str) -> None:  # noqa: ANN001
    """Issue #13: a drained host's stopped instance (root disk and a data volume) moves to
    another host of its zone, its root disk adopted there for its new slot; it starts
    there. A running one stays where it is."""
    from gureum.store.ebs_models import Volume
    from gureum.testing import wait_for

    ec2 = cloud.client()
    (_, agent1), (_, agent2) = zone_b["b-host1"], zone_b["b-host2"]
    ids = {name: hid for hid, name in _names(cloud).items()}
    assert _cli(cloud, "host", "drain", "b-host2") == 0  # both land on b-host1
    try:
        stays, moves = _run(cloud, image, subnet_b, count=2)
    finally:
        assert _cli(cloud, "host", "undrain", "b-host2") == 0
    for iid in (stays, moves):
        wait_state(ec2, iid, "running")
        assert _host_of(cloud, iid) == ids["b-host1"]
    vid = ec2.create_volume(AvailabilityZone="gureum-1b", Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1})
    ec2.attach_volume(VolumeId=vid, InstanceId=moves, Device="/dev/sdf")
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0][
        "Attachments"][0]["State"] == "attached", 10)
    ec2.stop_instances(InstanceIds=[moves])
    wait_state(ec2, moves, "stopped")
    with cloud.cloud.store.read() as s:
        root = s.scalar(select(Volume.volume_id).where(Volume.instance_id == moves,
                                                       Volume.is_root.is_(True)))
    assert root in agent1.volumes and vid in agent1.volumes

    assert _cli(cloud, "host", "drain", "b-host1") == 0
    try:
        assert wait_for(lambda: _host_of(cloud, moves) == ids["b-host2"], 20)
        assert _host_of(cloud, stays) == ids["b-host1"]  # running: stays
        assert {root, vid} <= set(agent2.volumes)
        # The old copies go once the store names the new host.
        assert wait_for(lambda: not {root, vid} & set(agent1.volumes)
                        and moves not in agent1.instances(), 10)
        with cloud.cloud.store.read() as s:
            slot = s.get(models.Instance, moves).slot
            assert {s.get(Volume, v).host_id for v in (root, vid)} == {ids["b-host2"]}
        assert agent2.adopted[root] == slot
        ec2.start_instances(InstanceIds=[moves])
        wait_state(ec2, moves, "running")
        assert moves in agent2.instances() and agent2.mounted[vid] == (moves, "/dev/sdf")
    finally:
        assert _cli(cloud, "host", "undrain", "b-host1") == 0
    ec2.detach_volume(VolumeId=vid)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1})
    ec2.delete_volume(VolumeId=vid)
    _terminate(cloud, [stays, moves])


def test_an_elastic_ip_follows_its_instance_across_hosts(
        cloud: FastCloud, zone_b, subnet_b: str, image: str,  # noqa: ANN001
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #13: each host maps the public addresses of its own instances; moving an
    Elastic IP to an instance on another host moves its mapping there at once. `gureum
    host usage` shows each instance under its host."""
    ec2 = cloud.client()
    (_, agent1), (_, agent2) = zone_b["b-host1"], zone_b["b-host2"]
    ids = {name: hid for hid, name in _names(cloud).items()}
    vpc = ec2.describe_subnets(SubnetIds=[subnet_b])["Subnets"][0]["VpcId"]
    if not ec2.describe_internet_gateways(Filters=[
            {"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {
            "Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
        ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0",
                         GatewayId=igw)  # a public subnet: its addresses are mapped
    placed = {}
    for host, other in (("b-host1", "b-host2"), ("b-host2", "b-host1")):
        assert _cli(cloud, "host", "drain", other) == 0
        try:
            placed[host] = _run(cloud, image, subnet_b)[0]
        finally:
            assert _cli(cloud, "host", "undrain", other) == 0
        wait_state(ec2, placed[host], "running")
        assert _host_of(cloud, placed[host]) == ids[host]
    capsys.readouterr()
    assert _cli(cloud, "host", "usage", "--json") == 0
    usage = {h["host"]: [i["instance_id"] for i in h["instances"]]
             for h in json.loads(capsys.readouterr().out)}
    assert all(placed[host] in usage[host] for host in placed), usage
    eip = ec2.allocate_address(Domain="vpc")
    try:
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=placed["b-host1"])
        assert eip["PublicIp"] in agent1.public_ips and eip["PublicIp"] not in agent2.public_ips
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=placed["b-host2"],
                              AllowReassociation=True)
        assert eip["PublicIp"] in agent2.public_ips and eip["PublicIp"] not in agent1.public_ips
        private = ec2.describe_instances(InstanceIds=[placed["b-host2"]])["Reservations"][0][
            "Instances"][0]["PrivateIpAddress"]
        assert agent2.public_ips[eip["PublicIp"]][0] == private
    finally:
        ec2.disassociate_address(PublicIp=eip["PublicIp"])
        ec2.release_address(AllocationId=eip["AllocationId"])
        _terminate(cloud, list(placed.values()))
