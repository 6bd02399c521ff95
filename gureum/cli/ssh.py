"""`gureum ssh i-...`: the right user, address and key for an instance."""

from __future__ import annotations

import os
from pathlib import Path

from gureum.config import Config
from gureum.services.ec2 import networks
from gureum.store import models
from gureum.store.db import Store


def find_key(key_name: str | None, identity: str | None) -> str | None:
    if identity:
        return identity
    if not key_name:
        return None
    for candidate in (Path.cwd() / f"{key_name}.pem", Path.home() / ".ssh" / f"{key_name}.pem",
                      Path.home() / ".ssh" / key_name):
        if candidate.exists():
            return str(candidate)
    return None


def host_keys(cfg: Config, instance_id: str) -> list[str]:
    """The instance's SSH host public keys: from its disk, else from its console log
    (the block EC2 users read with get-console-output)."""
    keys: list[str] = []
    ssh_dir = cfg.instances_dir / instance_id / "rootfs" / "etc" / "ssh"
    try:
        for pub in sorted(ssh_dir.glob("ssh_host_*_key.pub")):
            keys.append(pub.read_text().strip())
    except OSError:
        keys = []
    if keys:
        return keys
    try:
        console = (cfg.instances_dir / instance_id / "console.log").read_text(errors="replace")
    except OSError:
        return []
    block = console.rpartition("-----BEGIN SSH HOST KEY KEYS-----")[2]
    block = block.partition("-----END SSH HOST KEY KEYS-----")[0]
    return [line.strip() for line in block.splitlines() if line.startswith("ssh-") or
            line.startswith("ecdsa-")]


def known_hosts(cfg: Config, instance_id: str, address: str) -> str | None:
    """A known_hosts file holding exactly this instance's keys, so a reused address
    never trips over an earlier instance's keys and a wrong key is refused."""
    keys = host_keys(cfg, instance_id)
    if not keys:
        return None
    path = cfg.instances_dir / instance_id / "known_hosts"
    lines = []
    for key in keys:
        kind, blob = key.split()[:2]
        lines.append(f"{address} {kind} {blob}\n")
    path.write_text("".join(lines))
    return str(path)


def ssh_command(cfg: Config, instance_id: str, identity: str | None, command: list[str]) -> list[str]:
    store = Store(cfg.store_url)
    with store.read() as s:
        inst = s.get(models.Instance, instance_id)
        public = inst is not None and inst.public_ip is not None and \
            inst.subnet_id in networks.public_subnet_ids(s)
    if inst is None:
        raise SystemExit(f"gureum: no instance {instance_id}")
    if inst.state != "running":
        raise SystemExit(f"gureum: {instance_id} is {inst.state}")
    # Without a reachable public address, go in from the VPC's own router (a bastion
    # that needs no instance): the private address is only routable there.
    address = inst.public_ip if public else inst.private_ip
    via = [] if public else ["ip", "netns", "exec", f"{cfg.prefix}-{inst.vpc_id}"]
    key = find_key(inst.key_name, identity)
    pinned = known_hosts(cfg, instance_id, address)
    if pinned:
        cmd = ["ssh", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={pinned}"]
    else:  # keys not readable here (e.g. a remote agent): trust on first use
        cmd = ["ssh", "-o", "StrictHostKeyChecking=accept-new",
               "-o", f"UserKnownHostsFile={os.path.expanduser('~/.ssh/known_hosts_gureum')}"]
    if key:
        cmd += ["-i", key]
    return [*via, *cmd, f"ec2-user@{address}", *command]
