"""`gureum image import`: a user's own root filesystem (a tarball, or a disk image holding
one filesystem) becomes an image of an account, launchable at once."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gureum.agent import custom_images, hostcmd, storage
from gureum.agent.volume_store import mount_options
from gureum.config import Config
from gureum.errors import ApiError, HostCommandFailed

# What an instance's boot needs in its root, by init system.
NEEDS = {"tini": ("usr/bin/tini", "usr/sbin/sshd", "bin/sh"),
         "systemd": ("lib/systemd/systemd", "usr/sbin/sshd")}


def _unpack(source: Path, rootfs: Path) -> None:
    kind = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", str(source)],
                          capture_output=True, text=True).stdout.strip()
    if kind:  # a disk image: its one filesystem, read-only
        with tempfile.TemporaryDirectory(dir=rootfs.parent) as mnt:
            hostcmd.run(["mount", "-o", mount_options(kind, readonly=True), str(source), mnt])
            try:
                hostcmd.run(["cp", "-a", "--one-file-system", f"{mnt}/.", str(rootfs)],
                            timeout=3600)
            finally:
                storage.unmount(Path(mnt))
        shutil.rmtree(rootfs / "lost+found", ignore_errors=True)
        return
    # GNU tar recognises gzip, xz and zstd archives by their first bytes.
    hostcmd.run(["tar", "-x", "--numeric-owner", "--xattrs", "-f", str(source),
                 "-C", str(rootfs)], timeout=3600)


def import_image(cfg: Config, source: Path, name: str, account: str, description: str,
                 init_system: str) -> str:
    from gureum.cloud import Cloud
    from gureum.services.ec2 import ids, images
    from gureum.store import models

    cloud = Cloud(cfg, with_agent=False)
    owner = cloud.account_by_name(account)
    if owner is None:
        raise SystemExit(f"no account named {account!r}")
    images.check_name(name)
    image_id = ids.new("ami")
    target = custom_images.image_dir(cfg.data_dir, image_id)
    staging = target.with_name(image_id + ".building")
    rootfs = staging / "rootfs"
    rootfs.mkdir(parents=True)
    try:
        _unpack(source, rootfs)
        missing = [p for p in NEEDS[init_system] if not (rootfs / p).exists()]
        if missing:
            raise SystemExit(f"{source} cannot boot as a gureum image ({init_system}): "
                             f"missing {', '.join('/' + p for p in missing)}")
        (rootfs / "usr/lib/gureum").mkdir(parents=True, exist_ok=True)  # boot files go here
        rootfs.chmod(0o755)
        used = int(subprocess.run(["du", "-sb", str(rootfs)], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
        (staging / "complete").write_text(image_id + "\n")
        staging.rename(target)
    except BaseException:
        custom_images.delete(cfg.data_dir, image_id)
        raise
    with cloud.store.write() as s:
        s.add(models.Image(
            image_id=image_id, name=name, owner_id=owner.account_id, owner_alias=None,
            description=description or f"imported from {source.name}",
            rootfs=str(target / "rootfs"), state="available", public=False,
            account_id=owner.account_id, shared_with=[], init_system=init_system,
            root_size_gib=max(8, math.ceil(used * 2 / 1024**3))))
    return image_id


def run(cfg: Config, source: str, name: str, account: str, description: str,
        init_system: str) -> int:
    path = Path(source)
    if not path.is_file():
        print(f"{source}: no such file", file=sys.stderr)
        return 1
    try:
        print(import_image(cfg, path.resolve(), name, account, description, init_system))
    except ApiError as err:
        print(f"{err.code}: {err.message}", file=sys.stderr)
        return 1
    except HostCommandFailed as err:
        print(f"import failed: {err}", file=sys.stderr)
        return 1
    return 0
