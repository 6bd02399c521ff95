"""Nothing is lost when the control plane dies: SIGKILL at any moment, then converge.

Runs last (file name order is not relied on: each test restarts the shared server itself
and leaves it running)."""

from __future__ import annotations

import subprocess
import time

import pytest
from helpers import Network, ssh, wait_for, wait_state

from gureum.testing import tcp_open

LAUNCH_POINTS = ["launch.disk_created", "launch.rootfs_mounted", "launch.netns_created",
                 "launch.container_started", "controller.launched_before_ready"]


def test_sigkill_and_restart_keeps_running_instances(server, ec2, launch, key_pair):
    inst = launch()["Instances"][0]
    iid = inst["InstanceId"]
    before = wait_state(ec2, iid, "running")
    ssh(key_pair[1], before["PublicIpAddress"], "echo survived > /home/ec2-user/marker")
    server.kill()
    # The instance does not depend on the control plane: it still answers while it is down.
    assert ssh(key_pair[1], before["PublicIpAddress"], "cat /home/ec2-user/marker").stdout.strip() == "survived"
    server.start()
    after = wait_state(ec2, iid, "running")
    assert after["PrivateIpAddress"] == before["PrivateIpAddress"]
    assert after["PublicIpAddress"] == before["PublicIpAddress"]
    assert ssh(key_pair[1], after["PublicIpAddress"], "cat /home/ec2-user/marker").stdout.strip() == "survived"


@pytest.mark.parametrize("point", LAUNCH_POINTS)
def test_crash_during_launch_converges(server, ec2, launch, key_pair, point):
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": point})
    iid = launch()["Instances"][0]["InstanceId"]
    assert wait_for(lambda: server.proc.poll() is not None, 30), f"server did not crash at {point}"
    server.start()
    running = wait_state(ec2, iid, "running", timeout=60)
    assert ssh(key_pair[1], running["PublicIpAddress"], "hostname").returncode == 0
    # Exactly one container, one netns for this instance: nothing doubled by the retry.
    objects = server.host_objects()
    assert len([n for n in objects["netns"] if iid in n]) == 1
    assert len([c for c in objects["containers"] if iid in c]) == 1


@pytest.mark.parametrize("point,action,final", [
    ("stop.container_stopped", "stop", "stopped"),
    ("controller.stopped_before_record", "stop", "stopped"),
    ("terminate.stopped", "terminate", "terminated"),
    ("controller.destroyed_before_record", "terminate", "terminated"),
])
def test_crash_during_stop_and_terminate_converges(server, ec2, launch, point, action, final):
    iid = launch()["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": point})
    getattr(ec2, f"{action}_instances")(InstanceIds=[iid])
    assert wait_for(lambda: server.proc.poll() is not None, 30), f"server did not crash at {point}"
    server.start()
    wait_state(ec2, iid, final, timeout=60)
    objects = server.host_objects()
    leaked = {k: [n for n in v if iid in n] for k, v in objects.items()}
    if final == "terminated":
        assert not any(leaked.values()), leaked
    else:
        assert not leaked["containers"] and not leaked["netns"] and not leaked["mounts"]
    time.sleep(0)


@pytest.mark.parametrize("point", ["vpc.router_created", "vpc.uplink_created"])
def test_crash_while_building_a_vpc_router_converges(server, ec2, image_id, key_pair, point):
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": point})
    net = Network(ec2)
    try:
        iid = ec2.run_instances(
            ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
            KeyName=key_pair[0], NetworkInterfaces=[{
                "DeviceIndex": 0, "SubnetId": net.subnet, "Groups": [net.group],
                "AssociatePublicIpAddress": True}])["Instances"][0]["InstanceId"]
        net.instances.append(iid)
        assert wait_for(lambda: server.proc.poll() is not None, 30), f"no crash at {point}"
        server.start()
        running = wait_state(ec2, iid, "running", timeout=60)
        assert ssh(key_pair[1], running["PublicIpAddress"], "hostname").returncode == 0
        routers = [n for n in server.host_objects()["netns"] if n.endswith(net.vpc)]
        assert len(routers) == 1
    finally:
        net.delete()


def test_a_lost_vpc_router_is_rebuilt_around_running_instances(server, ec2, launch, key_pair):
    """The router netns of a VPC disappears under a running instance (host damage, a
    careless cleanup): after a restart the instance is rewired, with its processes intact."""
    inst = launch()["Instances"][0]
    iid = inst["InstanceId"]
    running = wait_state(ec2, iid, "running")
    ip = running["PublicIpAddress"]
    ssh(key_pair[1], ip, "nohup sleep 600 >/dev/null 2>&1 & echo $! > /home/ec2-user/sleeper")
    server.stop()
    router = next(n for n in server.host_objects()["netns"] if n.endswith(running["VpcId"]))
    subprocess.run(["ip", "netns", "del", router], check=True)
    assert not wait_for(lambda: tcp_open(ip, 22, 0.3), 1)
    server.start()
    assert wait_for(lambda: tcp_open(ip, 22, 0.3), 30), "instance not rewired"
    alive = ssh(key_pair[1], ip, "kill -0 $(cat /home/ec2-user/sleeper) && echo alive").stdout
    assert alive.strip() == "alive"  # the same boot, not a relaunch
    assert ssh(key_pair[1], ip, "curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id"
               ).stdout == iid


def _group_instances(ec2, name: str) -> list[str]:  # noqa: ANN001
    """Instances tagged as the group's that are not terminated: launched, never doubled."""
    found = ec2.describe_instances(Filters=[
        {"Name": "tag:aws:autoscaling:groupName", "Values": [name]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]


def _group_ready(asg, name: str, count: int) -> bool:  # noqa: ANN001
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"][0]["Instances"]
    return len(members) == count and {m["LifecycleState"] for m in members} == {"InService"}


@pytest.mark.parametrize("point", ["autoscaling.launch_recorded", "autoscaling.instance_launched",
                                   "autoscaling.drained"])
def test_crash_during_scaling_never_launches_twice(server, ec2, image_id, point):
    """A crash between recording a launch, making it, and recording the instance (or
    between draining and terminating on scale-in) converges to the desired capacity,
    with no instance launched twice or left behind."""
    name = f"crash-{point.split('.')[1]}"
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lt = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    asg = server.client("autoscaling")
    scale_in = point == "autoscaling.drained"
    if scale_in:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=3,
                                      DesiredCapacity=2, VPCZoneIdentifier=subnet,
                                      LaunchTemplate={"LaunchTemplateId": lt})
        assert wait_for(lambda: _group_ready(asg, name, 2), 60)
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": point})
    asg = server.client("autoscaling")
    if scale_in:
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=1)
    else:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=3,
                                      DesiredCapacity=2, VPCZoneIdentifier=subnet,
                                      LaunchTemplate={"LaunchTemplateId": lt})
    assert wait_for(lambda: server.proc.poll() is not None, 30), f"server did not crash at {point}"
    server.start()
    asg = server.client("autoscaling")
    wanted = 1 if scale_in else 2
    assert wait_for(lambda: _group_ready(asg, name, wanted), 60)
    assert wait_for(lambda: len(_group_instances(ec2, name)) == wanted, 30), \
        _group_instances(ec2, name)
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    assert wait_for(lambda: not _group_instances(ec2, name), 60)
    assert wait_for(lambda: not asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"], 30)
    ec2.delete_launch_template(LaunchTemplateId=lt)


def test_sigkill_during_an_instance_refresh_converges(server, ec2, image_id):
    """The control plane dies in the middle of a refresh: after a restart the refresh
    finishes, every member on the new version, none launched twice or left behind."""
    name = "crash-refresh"
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lt = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t3.micro"})
    asg = server.client("autoscaling")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=2, MaxSize=2,
                                  DesiredCapacity=2, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"})
    assert wait_for(lambda: _group_ready(asg, name, 2), 60)
    asg.start_instance_refresh(AutoScalingGroupName=name, Preferences={
        "MinHealthyPercentage": 50, "InstanceWarmup": 0}, DesiredConfiguration={
        "LaunchTemplate": {"LaunchTemplateId": lt, "Version": "2"}})

    def mid_refresh() -> bool:
        members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"][0]["Instances"]
        return any(m["LaunchTemplate"]["Version"] == "2" for m in members)

    assert wait_for(mid_refresh, 60)
    server.kill()
    server.start()
    asg = server.client("autoscaling")

    def refreshed() -> bool:
        state = asg.describe_instance_refreshes(AutoScalingGroupName=name)[
            "InstanceRefreshes"][0]["Status"]
        members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"][0]["Instances"]
        return state == "Successful" and len(members) == 2 and all(
            m["LaunchTemplate"]["Version"] == "2" and m["LifecycleState"] == "InService"
            for m in members)

    assert wait_for(refreshed, 90), asg.describe_instance_refreshes(AutoScalingGroupName=name)
    assert wait_for(lambda: len(_group_instances(ec2, name)) == 2, 30), _group_instances(ec2, name)
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    assert wait_for(lambda: not _group_instances(ec2, name), 60)
    ec2.delete_launch_template(LaunchTemplateId=lt)


# -- EBS ----------------------------------------------------------------------------------
def _alive(server) -> None:  # noqa: ANN001
    """The server answers (restarted, without a crash point, if it died)."""
    if server.proc.poll() is not None:
        server.start()


def _retrying(server, call, *args, gone_code: str | None = None, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    """An API call that a crash may cut: restart and call again until it answers. A crash
    between the answer's headers and its body leaves boto3 an empty body to parse. For a
    delete, `gone_code` on a retry means the cut call went through (the restarted
    controller finished it), as a client retrying against AWS would see."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    for attempt in range(5):
        _alive(server)
        try:
            return call(*args, **kwargs)
        except (BotoCoreError, ResponseParserError):
            assert wait_for(lambda: server.proc.poll() is not None, 10)
        except ClientError as error:
            if attempt and gone_code and error.response["Error"]["Code"] == gone_code:
                return None
            raise
    raise AssertionError(f"{call} never answered")


def _until(server, predicate, timeout: float = 60) -> bool:  # noqa: ANN001
    def check() -> bool:
        _alive(server)
        try:
            return predicate()
        except Exception:  # noqa: BLE001 (the server may die between two polls)
            return False
    return wait_for(check, timeout, interval=0.2)


@pytest.mark.parametrize("point", ["ebs.volume_created", "ebs.attached_before_record",
                                   "ebs.detached_before_record",
                                   "ebs.volume_deleted_before_record"])
def test_crash_during_volume_work_converges(server, ec2, launch, key_pair, point):
    iid = launch()["Instances"][0]["InstanceId"]
    ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": point})
    crashing = server.proc

    def volume() -> dict:
        return ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]

    vid = _retrying(server, ec2.create_volume, AvailabilityZone="gureum-1a", Size=1)["VolumeId"]
    assert _until(server, lambda: volume()["State"] == "available")
    _retrying(server, ec2.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    assert _until(server, lambda: volume()["Attachments"][0]["State"] == "attached")
    ssh(key_pair[1], ip, "sudo sh -c 'echo kept > /mnt/sdf/f'")
    _retrying(server, ec2.detach_volume, VolumeId=vid)
    assert _until(server, lambda: volume()["State"] == "available")
    assert ssh(key_pair[1], ip, "ls /mnt").stdout.split() == []
    _retrying(server, ec2.delete_volume, VolumeId=vid, gone_code="InvalidVolume.NotFound")
    assert _until(server, lambda: not ec2.describe_volumes(Filters=[
        {"Name": "volume-id", "Values": [vid]}])["Volumes"])
    assert _until(server, lambda: not (server.data_dir / "volumes" / f"{vid}.img").exists())
    # The file goes just before the crash point: give the kill its moment to land.
    assert _until(server, lambda: server.proc is not crashing, 20), \
        f"the server never reached {point}"
    assert not [m for m in server.host_objects()["mounts"] if vid in m]


def test_crash_while_snapshotting_keeps_the_point_in_time(server, ec2, launch, key_pair):
    """The crash comes inside CreateSnapshot, after the copy: the caller saw no answer;
    the snapshot completes after the restart and holds what was there at the call."""
    iid = launch()["Instances"][0]["InstanceId"]
    ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
    vid = ec2.create_volume(AvailabilityZone="gureum-1a", Size=1)["VolumeId"]
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"]
                    == "available", 30)
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0][
        "Attachments"][0]["State"] == "attached", 30)
    ssh(key_pair[1], ip, "sudo sh -c 'echo before > /mnt/sdf/f; sync'")
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": "ebs.snapshot_taken"})
    from botocore.exceptions import BotoCoreError
    with pytest.raises(BotoCoreError):  # the connection closes without an answer
        ec2.create_snapshot(VolumeId=vid)
    ssh(key_pair[1], ip, "sudo sh -c 'echo after >> /mnt/sdf/f; sync'")
    server.start()

    def snapshots() -> list[dict]:
        return ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vid]}])["Snapshots"]
    assert wait_for(lambda: [s["State"] for s in snapshots()] == ["completed"], 30), snapshots()
    sid = snapshots()[0]["SnapshotId"]
    restored = ec2.create_volume(AvailabilityZone="gureum-1a", SnapshotId=sid)["VolumeId"]
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[restored])["Volumes"][0]["State"]
                    == "available", 30)
    ec2.attach_volume(VolumeId=restored, InstanceId=iid, Device="/dev/sdg")
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[restored])["Volumes"][0][
        "Attachments"][0]["State"] == "attached", 30)
    assert ssh(key_pair[1], ip, "cat /mnt/sdg/f").stdout.split() == ["before"]
    for v in (vid, restored):
        ec2.detach_volume(VolumeId=v)
    for v in (vid, restored):
        assert wait_for(lambda v=v: ec2.describe_volumes(VolumeIds=[v])["Volumes"][0]["State"]
                        == "available", 30)
        ec2.delete_volume(VolumeId=v)
    ec2.delete_snapshot(SnapshotId=sid)


def test_crash_after_building_an_image_converges(server, ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    server.stop()
    server.start(extra_env={"GUREUM_CRASH_AT": "ebs.image_built_before_record"})
    crashing = server.proc
    image = _retrying(server, ec2.create_image, InstanceId=iid, Name="crash-image",
                      NoReboot=True)["ImageId"]
    assert _until(server, lambda: ec2.describe_images(ImageIds=[image])["Images"][0]["State"]
                  == "available", 120)
    assert server.proc is not crashing, "the server never crashed"
    assert (server.data_dir / "images" / image / "rootfs" / "etc").is_dir()
    ec2.deregister_image(ImageId=image, DeleteAssociatedSnapshots=True)
    assert wait_for(lambda: not (server.data_dir / "images" / image).exists(), 30)
