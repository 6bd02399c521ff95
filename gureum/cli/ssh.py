"""`gureum ssh i-...`: the right user, address and key for an instance."""

from __future__ import annotations

import os
from pathlib import Path

from gureum.config import Config
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


def ssh_command(cfg: Config, instance_id: str, identity: str | None, command: list[str]) -> list[str]:
    store = Store(f"sqlite:///{cfg.db_path}")
    with store.read() as s:
        inst = s.get(models.Instance, instance_id)
    if inst is None:
        raise SystemExit(f"gureum: no instance {instance_id}")
    if inst.state != "running":
        raise SystemExit(f"gureum: {instance_id} is {inst.state}")
    address = inst.public_ip or inst.private_ip
    key = find_key(inst.key_name, identity)
    cmd = ["ssh", "-o", "StrictHostKeyChecking=accept-new",
           "-o", f"UserKnownHostsFile={os.path.expanduser('~/.ssh/known_hosts_gureum')}"]
    if key:
        cmd += ["-i", key]
    return [*cmd, f"ec2-user@{address}", *command]
