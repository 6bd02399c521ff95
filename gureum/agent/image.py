"""The cloud's own images: Debian roots built with mmdebstrap, cached by recipe hash.

Two recipes: the default (minbase, tini runs /usr/lib/gureum/boot: sshd and the user-data
runner, nothing else) and a standard one with systemd as PID 1, as a Debian cloud image
on EC2 boots. The cache lives outside any data directory (default
/var/cache/gureum/images) so that every install and every test run on the machine shares
one build.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gureum.errors import HostCommandFailed

SUITE = "bookworm"
PACKAGES = (
    "openssh-server",
    "python3",
    "sudo",
    "curl",
    "iproute2",
    "ca-certificates",
    "tini",
    "procps",
    "python3-yaml",
)
# Runs inside the new root (mmdebstrap's chroot customize hook) once per build.
CUSTOMIZE = r"""
set -e
useradd --create-home --shell /bin/bash --uid 1000 --user-group ec2-user
usermod -aG sudo ec2-user
echo 'ec2-user ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
rm -f /etc/ssh/ssh_host_*
cat > /etc/ssh/sshd_config.d/gureum.conf <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
CONF
: > /etc/resolv.conf
rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/*
mkdir -p /usr/lib/gureum
"""
# The standard image: systemd as init; the rest as the default image.
SYSTEMD_PACKAGES = tuple(p for p in PACKAGES if p != "tini") + ("systemd", "systemd-sysv", "dbus")
SYSTEMD_CUSTOMIZE = CUSTOMIZE + r"""
# A fresh machine-id per instance: /usr/lib/gureum/init writes one at first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
: > /etc/hostname
# The host wires the network (its netns, address, route): nothing to configure inside.
cat > /etc/systemd/system/gureum-userdata.service <<'UNIT'
[Unit]
Description=gureum: instance user data (cloud-init's common subset)
After=network-online.target ssh.service
Wants=network-online.target
ConditionPathExists=/run/gureum/seed/user-data

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /usr/lib/gureum/userdata.py
RemainAfterExit=yes
TimeoutStartSec=0
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable gureum-userdata.service ssh.service
# Nothing to do in a container: no console to log in on, no hardware, no kernel to tune.
systemctl mask console-getty.service getty@tty1.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-modules-load.service systemd-sysctl.service \
    systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount dev-hugepages.mount systemd-timesyncd.service
cat > /usr/lib/systemd/system-shutdown/gureum <<'HOOK'
#!/bin/sh
# The host reads this after init exits: "reboot" relaunches, anything else stops.
mkdir -p /var/lib/gureum && echo "$1" > /var/lib/gureum/halt
HOOK
chmod 0755 /usr/lib/systemd/system-shutdown/gureum
"""
BOOT_STYLES = ("tini", "systemd")


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    rootfs: Path
    description: str
    init_system: str = "tini"  # what runs as the instance's PID 1: one of BOOT_STYLES

    @property
    def packages(self) -> tuple[str, ...]:
        return SYSTEMD_PACKAGES if self.init_system == "systemd" else PACKAGES

    @property
    def customize(self) -> str:
        return SYSTEMD_CUSTOMIZE if self.init_system == "systemd" else CUSTOMIZE


def recipe_hash(init_system: str = "tini") -> str:
    if init_system == "systemd":
        recipe = "\n".join([SUITE, *SYSTEMD_PACKAGES, SYSTEMD_CUSTOMIZE])
    else:
        recipe = "\n".join([SUITE, *PACKAGES, CUSTOMIZE])
    return hashlib.sha256(recipe.encode()).hexdigest()


def default_image(cache_dir: Path) -> Image:
    digest = recipe_hash()
    return Image(
        image_id="ami-" + digest[:17],
        name=f"gureum-debian-12-{digest[:8]}",
        rootfs=cache_dir / digest / "rootfs",
        description="Debian 12 (bookworm) minbase with openssh-server, python3, sudo, curl",
    )


def systemd_image(cache_dir: Path) -> Image:
    digest = recipe_hash("systemd")
    return Image(
        image_id="ami-" + digest[:17],
        name=f"gureum-debian-12-systemd-{digest[:8]}",
        rootfs=cache_dir / digest / "rootfs",
        description="Debian 12 (bookworm) with systemd as init (systemctl, journald), "
                    "openssh-server, python3, sudo, curl",
        init_system="systemd",
    )


def images(cache_dir: Path) -> list[Image]:
    """Every image the cloud offers, the default first."""
    return [default_image(cache_dir), systemd_image(cache_dir)]


def is_built(image: Image) -> bool:
    return (image.rootfs.parent / "complete").exists()


def host_apt_sources() -> list[str]:
    """The host's own apt sources, so images come from the mirror the host trusts."""
    sources = sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    sources += sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    if os.path.exists("/etc/apt/sources.list") and os.path.getsize("/etc/apt/sources.list"):
        sources.insert(0, "/etc/apt/sources.list")
    return sources


def build(image: Image, on_line: Callable[[str], None] | None = None, force: bool = False) -> None:
    """Build the image root with mmdebstrap into a temporary dir, then rename into place."""
    if is_built(image) and not force:
        return
    target = image.rootfs.parent
    staging = target.with_name(target.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(image.packages),
        "--customize-hook=chroot \"$1\" sh -c " + _shell_quote(image.customize),
        SUITE,
        str(staging / "rootfs"),
        *host_apt_sources(),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-30:]
        if on_line:
            on_line(line.rstrip())
    if proc.wait() != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise HostCommandFailed(cmd, proc.returncode, "\n".join(tail))
    (staging / "complete").write_text(image.image_id + "\n")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
