"""The default image: a Debian root built with mmdebstrap, cached by recipe hash.

The cache lives outside any data directory (default /var/cache/gureum/images) so that
every install and every test run on the machine shares one build.
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


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    rootfs: Path
    description: str


def recipe_hash() -> str:
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
        "--include=" + ",".join(PACKAGES),
        "--customize-hook=chroot \"$1\" sh -c " + _shell_quote(CUSTOMIZE),
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
