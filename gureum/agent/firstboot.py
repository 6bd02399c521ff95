"""Files written into an instance's disk once, before its first boot: its own SSH host
keys, the launch key pair as ec2-user's authorized key, hostname and hosts."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

EC2_USER_UID = 1000


def _write(path: Path, data: str | bytes, mode: int, uid: int, gid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    tmp.rename(path)


def write_guest_file(rootfs: Path, parts: tuple[str, ...], data: str, mode: int,
                     uid: int) -> None:
    """Replace a file of an instance that has booted: every directory is opened without
    following symlinks (the guest may have made any of them one, pointing at a host path)
    and the new file is renamed over the old name, never written through it."""
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        tmp = f".{parts[-1]}.gureum"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=fd)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=fd)
        try:
            os.write(out, data.encode())
            os.fchown(out, uid, uid)
            os.fchmod(out, mode)
        finally:
            os.close(out)
        os.rename(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


def host_keys(hostname: str) -> dict[str, tuple[bytes, bytes]]:
    """ed25519 and ecdsa (RSA costs ~100 ms to generate and adds nothing here)."""
    keys: dict[str, tuple[bytes, bytes]] = {}
    for kind, private in (("ed25519", ed25519.Ed25519PrivateKey.generate()),
                          ("ecdsa", ec.generate_private_key(ec.SECP256R1()))):
        priv = private.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.OpenSSH,
                                     serialization.NoEncryption())
        pub = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH)
        keys[kind] = (priv, pub + f" root@{hostname}\n".encode())
    return keys


KEY_LABELS = {b"ssh-ed25519": ("256", "ED25519"), b"ecdsa-sha2-nistp256": ("256", "ECDSA")}
FINGERPRINTS = "etc/ssh/gureum_host_key_fingerprints"


def fingerprint_line(pub: bytes) -> str:
    """What `ssh-keygen -l -f <pub>` prints for one of our host keys."""
    kind, blob, *comment = pub.split()
    bits, label = KEY_LABELS[kind]
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).rstrip(b"=")
    name = comment[0].decode() if comment else "no comment"
    return f"{bits} SHA256:{digest.decode()} {name} ({label})"


def provision(rootfs: Path, uid_base: int, hostname: str, private_ip: str,
              authorized_key: str | None, resolver: str | None = None,
              search_domain: str | None = None) -> None:
    root = uid_base
    if resolver:
        search = f"search {search_domain}\n" if search_domain else ""
        _write(rootfs / "etc/resolv.conf", f"{search}nameserver {resolver}\noptions timeout:1\n",
               0o644, root, root)
    lines = []
    for kind, (priv, pub) in sorted(host_keys(hostname).items()):
        _write(rootfs / f"etc/ssh/ssh_host_{kind}_key", priv, 0o600, root, root)
        _write(rootfs / f"etc/ssh/ssh_host_{kind}_key.pub", pub, 0o644, root, root)
        lines.append(fingerprint_line(pub))
    # Written after the keys: boot/boot prints it while no key is newer (ssh-keygen -l
    # once per key costs the boot ~10 ms); keys made inside later are read again.
    _write(rootfs / FINGERPRINTS, "\n".join(lines) + "\n", 0o644, root, root)
    _write(rootfs / "etc/hostname", hostname + "\n", 0o644, root, root)
    _write(rootfs / "etc/hosts",
           f"127.0.0.1 localhost\n{private_ip} {hostname}\n::1 localhost ip6-localhost\n",
           0o644, root, root)
    if authorized_key:
        user = uid_base + EC2_USER_UID
        ssh_dir = rootfs / "home/ec2-user/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(ssh_dir, user, user)
        _write(ssh_dir / "authorized_keys", authorized_key.strip() + "\n", 0o600, user, user)
