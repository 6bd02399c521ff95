"""EBS on this host: what snapshots cost (time, disk) against volume size and data changed,
how long CreateImage takes, and disk throughput inside an instance (root disk and an
attached volume) against the host's own disk, as ratios measured in one run. The
instance's disks are files behind loop devices, which are buffered: O_DIRECT inside an
instance does not bypass the host's page cache, so reads and plain writes there can beat
the host's O_DIRECT numbers; the "fsync each" rows measure the durable path.

Peer for snapshots: a full sparse copy of the volume file on the host's own filesystem
(what a snapshot costs without reflinks). Peer for throughput: the host's disk itself.
fio is the host's (Debian's); the instance gets the host's binary and libraries copied in
(same Debian release), since instances have no outbound network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import bench_server, console, key_and_image, terminate_all
from rich.table import Table

from gureum.testing import SSH_OPTS, ssh, wait_for

MIB = 1024**2
ZONE = "gureum-1a"
FIO_JOBS = {  # name: fio arguments
    "seq read 1M": ["--rw=read", "--bs=1M"],
    "seq write 1M": ["--rw=write", "--bs=1M"],
    "rand read 4k": ["--rw=randread", "--bs=4k"],
    "rand write 4k": ["--rw=randwrite", "--bs=4k"],
    # Durable writes: an fsync after each (O_DIRECT alone does not bypass the host's page
    # cache under an instance: its loop devices are buffered).
    "seq write 1M, fsync each": ["--rw=write", "--bs=1M", "--fsync=1"],
    "rand write 4k, fsync each": ["--rw=randwrite", "--bs=4k", "--fsync=1"],
}


def store_used(data_dir: Path) -> int:
    st = os.statvfs(data_dir / "volumes")
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def volume_state(ec2, volume_id: str) -> str:  # noqa: ANN001
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"]


def new_volume(ec2, size: int) -> str:  # noqa: ANN001
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=size, VolumeType="gp3")["VolumeId"]
    wait_for(lambda: volume_state(ec2, vid) == "available", 60)
    return vid


def attach(ec2, vid: str, iid: str, device: str) -> None:  # noqa: ANN001
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device=device)
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"][0][
        "State"] == "attached", 60)


def detach_delete(ec2, vid: str) -> None:  # noqa: ANN001
    ec2.detach_volume(VolumeId=vid)
    wait_for(lambda: volume_state(ec2, vid) == "available", 60)
    ec2.delete_volume(VolumeId=vid)


def snapshot(ec2, vid: str) -> tuple[str, float, float]:  # noqa: ANN001
    """(id, seconds the call took, seconds until completed)."""
    t0 = time.monotonic()
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    answered = time.monotonic() - t0
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"]
             == "completed", 60, interval=0.01)
    return sid, answered, time.monotonic() - t0


def snapshot_costs(ec2, server, key: Path, ip: str, iid: str, rounds: int) -> Table:  # noqa: ANN001
    table = Table(title=f"snapshots of an 8 GiB volume, 100 MiB of new data before each "
                        f"({rounds} rounds)")
    for col in ("round", "CreateSnapshot answer (s)", "-> completed (s)",
                "store growth (MiB)", "peer: full sparse copy (s)", "peer copy size (MiB)"):
        table.add_column(col, justify="right")
    vid = new_volume(ec2, 8)
    attach(ec2, vid, iid, "/dev/sdf")
    volume_file = server.data_dir / "volumes" / f"{vid}.img"
    peer_dir = server.data_dir / "peer-copies"
    peer_dir.mkdir()
    snaps = []
    before_all = store_used(server.data_dir)
    for n in range(rounds):
        ssh(key, ip, f"sudo dd if=/dev/urandom of=/mnt/sdf/chunk{n} bs=1M count=100 "
                     f"conv=fsync status=none", timeout=120)
        before = store_used(server.data_dir)
        sid, answered, completed = snapshot(ec2, vid)
        snaps.append(sid)
        grown = (store_used(server.data_dir) - before) / MIB
        t0 = time.monotonic()
        peer = peer_dir / f"copy{n}.img"
        subprocess.run(["cp", "--sparse=always", str(volume_file), str(peer)], check=True)
        peer_seconds = time.monotonic() - t0
        table.add_row(str(n + 1), f"{answered:.3f}", f"{completed:.3f}", f"{grown:.1f}",
                      f"{peer_seconds:.2f}", f"{peer.stat().st_blocks * 512 / MIB:.0f}")
    total = (store_used(server.data_dir) - before_all) / MIB
    peer_total = sum(p.stat().st_blocks * 512 for p in peer_dir.iterdir()) / MIB
    table.add_row("all", "", "", f"{total:.0f} (volume + {rounds} snapshots)", "",
                  f"{peer_total:.0f} ({rounds} copies)")
    shutil.rmtree(peer_dir)
    for sid in snaps:
        ec2.delete_snapshot(SnapshotId=sid)
    detach_delete(ec2, vid)
    return table


def snapshot_vs_size(ec2, iid: str, key: Path, ip: str) -> Table:  # noqa: ANN001
    table = Table(title="CreateSnapshot vs volume size and data written (volume attached)")
    for col in ("volume", "data written", "answer (s)", "-> completed (s)"):
        table.add_column(col, justify="right")
    for size, written in ((8, 0), (64, 0), (1024, 0), (64, 1024)):
        vid = new_volume(ec2, size)
        attach(ec2, vid, iid, "/dev/sdg")
        if written:
            ssh(key, ip, f"sudo dd if=/dev/zero of=/mnt/sdg/fill bs=1M count={written} "
                         f"conv=fsync status=none", timeout=300)
        sid, answered, completed = snapshot(ec2, vid)
        table.add_row(f"{size} GiB", f"{written} MiB", f"{answered:.3f}", f"{completed:.3f}")
        ec2.delete_snapshot(SnapshotId=sid)
        detach_delete(ec2, vid)
    return table


def create_image_times(ec2, iid: str, rounds: int) -> list[float]:  # noqa: ANN001
    times = []
    for n in range(rounds):
        t0 = time.monotonic()
        image = ec2.create_image(InstanceId=iid, Name=f"bench-image-{n}", NoReboot=True)["ImageId"]
        wait_for(lambda image=image: ec2.describe_images(ImageIds=[image])["Images"][0]["State"]
                 in ("available", "failed"), 300, interval=0.05)
        times.append(time.monotonic() - t0)
        ec2.deregister_image(ImageId=image, DeleteAssociatedSnapshots=True)
    return times


def fio_libraries() -> list[str]:
    out = subprocess.run(["ldd", "/usr/bin/fio"], capture_output=True, text=True,
                         check=True).stdout
    paths = [part for line in out.splitlines() for part in line.split() if part.startswith("/")]
    return ["/usr/bin/fio", *sorted(set(paths))]


def install_fio(key: Path, ip: str) -> str:
    """The host's fio with its libraries under /opt/fio; returns the command that runs it."""
    files = fio_libraries()
    tar = subprocess.Popen(["tar", "-chf", "-", *files], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    subprocess.run(["ssh", "-i", str(key), *SSH_OPTS, f"ec2-user@{ip}",
                    "sudo mkdir -p /opt/fio && sudo tar -xf - -C /opt/fio"],
                   stdin=tar.stdout, check=True, timeout=300)
    tar.wait()
    dirs = sorted({"/opt/fio" + os.path.dirname(f) for f in files[1:]})
    loader = next(f for f in files if "ld-linux" in f)
    return f"sudo /opt/fio{loader} --library-path {':'.join(dirs)} /opt/fio/usr/bin/fio"


def fio_args(directory: str, job: list[str], seconds: int) -> str:
    return " ".join(["--name=bench", f"--directory={directory}", "--size=256M",
                     "--ioengine=psync", "--direct=1", "--time_based",
                     f"--runtime={seconds}", "--output-format=json", *job])


def fio_result(output: str, job: list[str]) -> float:
    """MiB/s for 1M jobs, IOPS for 4k ones."""
    stats = json.loads(output[output.index("{"):])["jobs"][0]
    side = stats["read"] if "read" in job[0] else stats["write"]
    return side["bw_bytes"] / MIB if job[1] == "--bs=1M" else side["iops"]


def throughput(key: Path, ip: str, iid: str, ec2, server, seconds: int) -> Table:  # noqa: ANN001
    fio = install_fio(key, ip)
    vid = new_volume(ec2, 8)
    attach(ec2, vid, iid, "/dev/sdh")
    host_dir = server.data_dir / "host-fio"
    host_dir.mkdir()
    table = Table(title=f"fio, psync, O_DIRECT, 256 MiB file, {seconds} s each "
                        "(MiB/s for 1M, IOPS for 4k)")
    for col in ("workload", "host disk", "instance root disk", "ratio", "attached volume",
                "ratio"):
        table.add_column(col, justify="right")
    try:
        for name, job in FIO_JOBS.items():
            host = subprocess.run(["fio", *fio_args(str(host_dir), job, seconds).split()],
                                  capture_output=True, text=True, check=True).stdout
            root = ssh(key, ip, f"sudo mkdir -p /var/fio && {fio} "
                                f"{fio_args('/var/fio', job, seconds)}", timeout=300).stdout
            volume = ssh(key, ip, f"{fio} {fio_args('/mnt/sdh', job, seconds)}",
                         timeout=300).stdout
            h, r, v = (fio_result(x, job) for x in (host, root, volume))
            table.add_row(name, f"{h:.0f}", f"{r:.0f}", f"{r / h:.2f}", f"{v:.0f}",
                          f"{v / h:.2f}")
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
        ssh(key, ip, "sudo rm -rf /var/fio /mnt/sdh/bench*", check=False)
        detach_delete(ec2, vid)
    return table


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--fio-seconds", type=int, default=5)
    args = parser.parse_args()
    with bench_server("storage") as server:
        ec2 = server.client()
        key, image = key_and_image(ec2, server)
        inst = ec2.run_instances(ImageId=image, InstanceType="t3.small", MinCount=1,
                                 MaxCount=1, KeyName="bench")["Instances"][0]
        iid, ip = inst["InstanceId"], inst["PublicIpAddress"]
        wait_for(lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0][
            "Instances"][0]["State"]["Name"] == "running", 60)
        wait_for(lambda: ssh(key, ip, "true", check=False).returncode == 0, 60)
        try:
            console.print(snapshot_costs(ec2, server, key, ip, iid, args.rounds))
            console.print(snapshot_vs_size(ec2, iid, key, ip))
            times = create_image_times(ec2, iid, args.images)
            table = Table(title="CreateImage of a running instance -> image available")
            for col in ("p50 (s)", "min (s)", "max (s)", "n"):
                table.add_column(col, justify="right")
            table.add_row(f"{statistics.median(times):.2f}", f"{min(times):.2f}",
                          f"{max(times):.2f}", str(len(times)))
            console.print(table)
            console.print(throughput(key, ip, iid, ec2, server, args.fio_seconds))
        finally:
            terminate_all(ec2)
    console.print("Launch -> SSH-ready of the standard (systemd) image next to the small "
                  "one: bench/launch.py --image both")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
