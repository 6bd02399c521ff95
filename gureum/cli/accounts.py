"""`gureum account list|delete` and `gureum host usage`: the operator's commands over
every account (gureum/admin does the work; this module prints)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from gureum.admin import inventory, teardown
from gureum.cloud import Cloud
from gureum.config import Config
from gureum.errors import OperatorError

out = Console()
err = Console(stderr=True)


def _cloud(cfg: Config) -> Cloud:
    if not cfg.database_url and not cfg.db_path.exists():
        raise OperatorError(f"no cloud in {cfg.data_dir} (run `gureum up`, or pass --data-dir)")
    return Cloud(cfg, with_agent=False)


def list_accounts(cfg: Config, as_json: bool = False) -> int:
    found = inventory.accounts(_cloud(cfg))
    if as_json:
        print(json.dumps([vars(a) for a in found], indent=2))
        return 0
    table = Table("account", "name", "access keys", "instances", "volumes", "load balancers",
                  "Auto Scaling groups")
    for a in found:
        table.add_row(a.account_id, a.name, "\n".join(a.access_key_ids), str(a.instances),
                      str(a.volumes), str(a.load_balancers), str(a.auto_scaling_groups))
    out.print(table)
    return 0


def delete_account(cfg: Config, ref: str, yes: bool) -> int:
    cloud = _cloud(cfg)
    account = inventory.resolve(cloud, ref)
    if inventory.is_protected(account):
        raise OperatorError(f"account {account.account_id} ({account.name}) is the cloud "
                            "operator's own and cannot be deleted")
    if not yes:
        summary = next(a for a in inventory.accounts(cloud) if a.account_id == account.account_id)
        raise OperatorError(
            f"this terminates and removes everything account {account.account_id} "
            f"({account.name}) owns ({summary.instances} instance(s), {summary.volumes} "
            f"volume(s), {summary.load_balancers} load balancer(s), "
            f"{summary.auto_scaling_groups} Auto Scaling group(s), and its images, "
            "snapshots, networks, keys ...), then the account and its access keys: "
            "run again with --yes")
    with err.status(f"deleting account {account.account_id}") as status:
        removed = teardown.delete_account(cloud, ref, say=status.update)
    for item in removed:
        out.print(f"  [red]-[/] {item}")
    out.print(f"[bold]account {account.account_id} ({account.name}) deleted[/]")
    return 0


def host_usage(cfg: Config, as_json: bool = False) -> int:
    hosts = inventory.host_usage(_cloud(cfg))
    if as_json:
        print(json.dumps([{**vars(h), "instances": [vars(i) for i in h.instances],
                           "vcpus_in_use": h.vcpus_in_use,
                           "memory_mib_in_use": h.memory_mib_in_use} for h in hosts], indent=2))
        return 0
    table = Table("host", "account", "name", "instance", "type", "state", "vCPUs",
                  "memory MiB", title="instances of every account, by host")
    for h in hosts:
        for i in h.instances:
            table.add_row(h.host, i.account_id, i.account_name, i.instance_id,
                          i.instance_type, i.state, str(i.vcpus), str(i.memory_mib))
    out.print(table)
    totals = Table("host", "zone", "state", "instances", "vCPUs in use",
                   "host vCPUs (x overcommit)", "memory in use MiB",
                   "host memory MiB (x overcommit)", title="usage against capacity")
    for h in hosts:
        totals.add_row(h.host, h.zone, h.state, str(len(h.instances)), str(h.vcpus_in_use),
                       f"{h.vcpus} (x{h.cpu_overcommit:g} = {h.vcpus * h.cpu_overcommit:g})",
                       str(h.memory_mib_in_use),
                       f"{h.memory_mib} (x{h.memory_overcommit:g} = "
                       f"{h.memory_mib * h.memory_overcommit:g})")
    out.print(totals)
    return 0


def guarded(run: Callable[[], int]) -> int:
    """An operator error is a message and exit status 1, not a traceback."""
    try:
        return run()
    except OperatorError as e:
        print(f"gureum: {e}", file=sys.stderr)
        return 1
