"""EBS on a real host: volumes are ext4 filesystems the host mounts for instances (at
/mnt/<device>), snapshots are point-in-time reflinks, images are built from root disks."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from helpers import ssh, wait_for, wait_state

from gureum.testing import Server

ZONE = "gureum-1a"


def volume(ec2, volume_id: str) -> dict:  # noqa: ANN001
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def wait_attach(ec2, volume_id: str, state: str | None) -> None:  # noqa: ANN001
    def now() -> str | None:
        attachments = volume(ec2, volume_id)["Attachments"]
        return attachments[0]["State"] if attachments else None
    assert wait_for(lambda: now() == state, 30), volume(ec2, volume_id)


def new_volume(ec2, **kwargs) -> str:  # noqa: ANN001, ANN003
    vid = ec2.create_volume(AvailabilityZone=ZONE, **kwargs)["VolumeId"]
    assert wait_for(lambda: volume(ec2, vid)["State"] == "available", 30), volume(ec2, vid)
    return vid


@pytest.fixture(scope="module")
def pair(ec2, image_id, key_pair) -> list[dict]:  # noqa: ANN001
    res = ec2.run_instances(ImageId=image_id, MinCount=2, MaxCount=2, InstanceType="t3.nano",
                            KeyName=key_pair[0])
    out = [wait_state(ec2, i["InstanceId"], "running") for i in res["Instances"]]
    yield out
    ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in out])
    for i in out:
        wait_state(ec2, i["InstanceId"], "terminated")


def test_snapshot_is_point_in_time_and_data_moves_between_instances(
        ec2, pair, key_pair, server: Server) -> None:  # noqa: ANN001
    key = key_pair[1]
    first, second = pair[0]["PublicIpAddress"], pair[1]["PublicIpAddress"]
    vid = new_volume(ec2, Size=1, VolumeType="gp3")
    ec2.attach_volume(VolumeId=vid, InstanceId=pair[0]["InstanceId"], Device="/dev/sdf")
    wait_attach(ec2, vid, "attached")
    # A fresh volume comes formatted and mounted: no mkfs, no mount inside.
    out = ssh(key, first, "sudo sh -c 'echo before > /mnt/sdf/data.txt && sync' && "
                          "findmnt -n -o FSTYPE /mnt/sdf && ls -ld /mnt/sdf | cut -d' ' -f3").stdout
    assert out.split() == ["xfs", "root"]

    snap = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    ssh(key, first, "sudo sh -c 'echo after >> /mnt/sdf/data.txt; echo new > /mnt/sdf/later.txt'")
    assert wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0][
        "State"] == "completed", 30)

    # A larger volume from the snapshot, on the other instance: exactly the snapshot's
    # data, and a filesystem grown to the volume's size.
    restored = new_volume(ec2, SnapshotId=snap, Size=2)
    ec2.attach_volume(VolumeId=restored, InstanceId=pair[1]["InstanceId"], Device="/dev/sdg")
    wait_attach(ec2, restored, "attached")
    out = ssh(key, second, "cat /mnt/sdg/data.txt; ls /mnt/sdg; "
                           "df -B1M --output=size /mnt/sdg | tail -1").stdout.split()
    assert out[0] == "before" and "later.txt" not in out[1:-1], out
    assert int(out[-1]) > 1500, out  # 2 GiB, not the snapshot's 1 GiB
    # A full volume stops only its writer: the instance's own disk still takes writes.
    out = ssh(key, second, "sudo fallocate -l 3G /mnt/sdg/big 2>&1; sudo rm -f /mnt/sdg/big; "
                           "echo fine > /home/ec2-user/still && cat /home/ec2-user/still").stdout
    assert "No space left on device" in out and out.strip().endswith("fine"), out

    # Grow online: the mounted filesystem follows without a detach.
    ec2.modify_volume(VolumeId=vid, Size=3)
    assert wait_for(lambda: ec2.describe_volumes_modifications(VolumeIds=[vid])[
        "VolumesModifications"][0]["ModificationState"] == "completed", 30)
    assert volume(ec2, vid)["Size"] == 3
    size = ssh(key, first, "df -B1M --output=size /mnt/sdf | tail -1").stdout
    assert int(size) > 2500, size

    # Detach (flushed), attach elsewhere: the data is there, the old mount is gone.
    ec2.detach_volume(VolumeId=vid)
    wait_attach(ec2, vid, None)
    assert ssh(key, first, "ls /mnt").stdout.split() == []
    ec2.attach_volume(VolumeId=vid, InstanceId=pair[1]["InstanceId"], Device="/dev/xvdh")
    wait_attach(ec2, vid, "attached")
    out = ssh(key, second, "cat /mnt/xvdh/data.txt /mnt/xvdh/later.txt; "
                           "df -B1M --output=size /mnt/xvdh | tail -1").stdout.split()
    assert out[:3] == ["before", "after", "new"] and int(out[3]) > 2500, out

    # A volume in use inside is not pulled from under its user: the detach waits.
    busy = subprocess_ssh(key, second, "cd /mnt/xvdh && sleep 60")
    try:
        assert wait_for(lambda: ssh(key, second, "pgrep -f 'sleep 60'", check=False)
                        .returncode == 0, 10)
        ec2.detach_volume(VolumeId=vid)
        wait_attach(ec2, vid, "detaching")
        assert wait_for(lambda: volume(ec2, vid)["Attachments"][0]["State"] == "detaching", 3)
        ssh(key, second, "sudo pkill -f 'sleep 60'", check=False)
        wait_attach(ec2, vid, None)
    finally:
        busy.kill()
        busy.wait()

    ec2.detach_volume(VolumeId=restored, Force=True)
    wait_attach(ec2, restored, None)
    for v in (vid, restored):
        ec2.delete_volume(VolumeId=v)
    ec2.delete_snapshot(SnapshotId=snap)
    assert wait_for(lambda: not list(Path(server.data_dir, "volumes").glob("vol-*"))
                    or all(p.name.split(".")[0] not in (vid, restored)
                           for p in Path(server.data_dir, "volumes").glob("*.img")), 30)


def subprocess_ssh(key: Path, address: str, command: str):  # noqa: ANN201
    import subprocess

    from gureum.testing import SSH_OPTS
    return subprocess.Popen(["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{address}", command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_an_image_of_a_configured_instance_serves_at_boot(ec2, image_id, key_pair) -> None:  # noqa: ANN001
    key = key_pair[1]
    web = ec2.create_security_group(GroupName="t-ebs-web", Description="8080")["GroupId"]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    made = []
    try:
        base = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, KeyName=key_pair[0],
                                 SecurityGroupIds=[default, web])["Instances"][0]
        made.append(base["InstanceId"])
        ip = wait_state(ec2, base["InstanceId"], "running")["PublicIpAddress"]
        # Configure it: an app's files and a service that starts at every boot.
        ssh(key, ip, "sudo mkdir -p /opt/app && echo 'baked into the image' | "
                     "sudo tee /opt/app/index.html >/dev/null && sudo rm /etc/debian_version && "
                     "sudo mkdir -p /var/lib/cloud/scripts/per-boot && "
                     "printf '#!/bin/sh\\ncd /opt/app && nohup python3 -m http.server 8080 "
                     ">/var/log/app.log 2>&1 &\\n' | sudo tee "
                     "/var/lib/cloud/scripts/per-boot/app.sh >/dev/null && "
                     "sudo chmod +x /var/lib/cloud/scripts/per-boot/app.sh")
        image = ec2.create_image(InstanceId=base["InstanceId"], Name="t-ebs-app",
                                 NoReboot=True)["ImageId"]
        assert wait_for(lambda: ec2.describe_images(ImageIds=[image])["Images"][0]["State"]
                        in ("available", "failed"), 120) and ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available", (
            ec2.describe_images(ImageIds=[image])["Images"][0].get("StateReason"),
            [s.get("StateMessage") for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]])
        clone = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName=key_pair[0],
                                  SecurityGroupIds=[default, web])["Instances"][0]
        made.append(clone["InstanceId"])
        clone_ip = wait_state(ec2, clone["InstanceId"], "running")["PublicIpAddress"]

        def serves() -> bool:
            try:
                with urllib.request.urlopen(f"http://{clone_ip}:8080/", timeout=2) as r:  # noqa: S310
                    return r.read().decode().strip() == "baked into the image"
            except OSError:
                return False
        assert wait_for(serves, 30), ssh(
            key, clone_ip, "ls -la /opt/app /var/lib/cloud/scripts/per-boot; cat /var/log/app.log; "
                           "tail -20 /var/log/cloud-init-output.log", check=False).stdout
        # Its own identity, not its origin's; the removed file stays removed; owners kept.
        out = ssh(key, clone_ip, "hostname; test -e /etc/debian_version && echo kept; "
                                 "stat -c %U /opt/app/index.html /home/ec2-user").stdout.split()
        assert out[0] != ssh(key, ip, "hostname").stdout.strip()
        assert "kept" not in out and out[1:] == ["root", "ec2-user"], out
        ec2.terminate_instances(InstanceIds=made)
        for iid in made:
            wait_state(ec2, iid, "terminated")
        ec2.deregister_image(ImageId=image, DeleteAssociatedSnapshots=True)
        assert wait_for(lambda: not ec2.describe_images(Owners=["self"])["Images"], 30)
    finally:
        if made:
            ec2.terminate_instances(InstanceIds=made)
            for iid in made:
                wait_state(ec2, iid, "terminated")
        ec2.delete_security_group(GroupId=web)


def test_an_imported_root_filesystem_boots(ec2, key_pair, server: Server, tmp_path: Path) -> None:  # noqa: ANN001
    """`gureum image import`: the default image's root as a zstd tarball, with one file
    added, becomes an image of the account; an instance of it boots with that file."""
    import subprocess

    from gureum.agent.image import default_image
    from gureum.config import Config
    from gureum.testing import VENV_BIN

    root = default_image(Path(server.env.get("GUREUM_IMAGE_CACHE", Config().image_cache))).rootfs
    extra = tmp_path / "extra" / "etc"
    extra.mkdir(parents=True)
    (extra / "imported-marker").write_text("from a tarball\n")
    tarball = tmp_path / "root.tar"
    subprocess.run(["tar", "-cf", str(tarball), "--numeric-owner", "-C", str(root), "."],
                   check=True)
    subprocess.run(["tar", "-rf", str(tarball), "--numeric-owner", "--owner=0", "--group=0",
                    "-C", str(tmp_path / "extra"), "etc/imported-marker"], check=True)
    subprocess.run(["zstd", "-q", "-1", "--rm", str(tarball)], check=True)

    def gureum_import(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir),
                               "image", "import", *args], capture_output=True, text=True,
                              env={**server.env})
    bad = gureum_import(str(tmp_path / "extra" / "etc" / "imported-marker"), "--name", "bad")
    assert bad.returncode != 0
    assert not list((server.data_dir / "images").glob("*.building"))
    done = gureum_import(f"{tarball}.zst", "--name", "imported-debian")
    assert done.returncode == 0, done.stderr
    image = done.stdout.strip()
    described = ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "name", "Values": ["imported-debian"]}])["Images"]
    assert [i["ImageId"] for i in described] == [image]
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName=key_pair[0])[
        "Instances"][0]["InstanceId"]
    try:
        ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
        assert ssh(key_pair[1], ip, "cat /etc/imported-marker").stdout == "from a tarball\n"
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
    ec2.deregister_image(ImageId=image)
    assert wait_for(lambda: not (server.data_dir / "images" / image).exists(), 30)


def test_a_volume_asked_for_at_launch_is_there_at_first_boot(ec2, image_id, key_pair) -> None:  # noqa: ANN001
    user_data = "#!/bin/sh\nfindmnt -n -o FSTYPE /mnt/sdf > /root/at-boot\n"
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, KeyName=key_pair[0],
                             UserData=user_data, BlockDeviceMappings=[
                                 {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}}])[
        "Instances"][0]
    iid = inst["InstanceId"]
    try:
        ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
        assert wait_for(lambda: ssh(key_pair[1], ip, "sudo cat /root/at-boot",
                                    check=False).stdout.strip() == "xfs", 30)
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
    volume = [m for m in ec2.describe_volumes()["Volumes"] if m.get("Attachments")
              and m["Attachments"][0]["InstanceId"] == iid]
    assert not volume  # DeleteOnTermination (true for launch mappings) took it
