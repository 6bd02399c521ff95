"""`gureum host list|drain|undrain|remove|token` and `gureum agent --join`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gureum import interpreter
from gureum.cli.accounts import _cloud
from gureum.config import Config
from gureum.hosts import registry
from gureum.stop_signals import on_stop_signal, wait_until_set

out = Console()


def list_hosts(cfg: Config, as_json: bool = False) -> int:
    views = registry.host_views(_cloud(cfg).store)
    if as_json:
        print(json.dumps([v.as_dict() for v in views], indent=2))
        return 0
    table = Table("host", "name", "zone", "state", "address", "vCPUs (used)",
                  "memory MiB (used)", "disk GiB", "instances", "last heartbeat")
    for v in views:
        table.add_row(v.host_id, v.name + (" (control)" if v.control else ""), v.zone, v.state,
                      v.address, f"{v.vcpus} ({v.used_vcpus:g})",
                      f"{v.memory_mib} ({v.used_memory_mib})", str(v.disk_gib),
                      str(v.instances), v.last_heartbeat)
    out.print(table)
    return 0


def change(cfg: Config, verb: str, ref: str) -> int:
    store = _cloud(cfg).store
    if verb == "remove":
        name = registry.remove(store, ref)
        out.print(f"host {name} removed (its agent may be stopped now)")
    else:
        name = registry.set_state(store, ref, "draining" if verb == "drain" else "active")
        out.print(f"host {name} {'draining: no new instances' if verb == 'drain' else 'active'}")
    return 0


def token(cfg: Config, rotate: bool) -> int:
    cloud = _cloud(cfg)
    print(registry.join_token(cloud.store, cfg, rotate=rotate))
    return 0


def agent_join(cfg: Config, url: str, token_value: str, name: str, zone: str | None,
               listen: str, address: str | None, ca_file: str | None) -> int:
    """Run this host's agent for the control plane at `url` until SIGTERM/SIGINT."""
    from gureum.agent.agent import HostAgent
    from gureum.hosts.join import Capacity, join_and_serve

    host, _, port = listen.rpartition(":")
    agent = HostAgent(cfg)
    agent.resume()
    try:
        joined = join_and_serve(agent, cfg.data_dir / "pki", url, token_value, name, zone,
                                (host.strip("[]"), int(port)), address, Capacity.of(cfg),
                                Path(ca_file) if ca_file else None)
    except BaseException:
        agent.close()
        raise
    # This host's nft table and sysctls, once it belongs to the cloud (a refused join
    # leaves nothing on the host).
    agent.ensure_host_network()
    done = on_stop_signal()
    addr = joined.server.server_address
    interpreter.settle()
    print(f"AGENT JOINED {joined.host_id} {addr[0]}:{addr[1]}", flush=True)
    wait_until_set(done)
    logging.getLogger("gureum.agent").info("agent stopping")
    joined.stop()
    _release_if_idle(agent)
    agent.close()
    return 0


def _release_if_idle(agent) -> None:  # noqa: ANN001  (HostAgent)
    """With no instance left on this host, its VPC routers and host network go too (as
    `gureum up` does for the control host); instances keep theirs across a restart."""
    from gureum.errors import HostError

    try:
        if agent.instances():
            return
        for vpc_id in agent.vpc_routers():
            agent.remove_vpc(vpc_id)
        agent.remove_host_network()
        agent.remove_cgroup_parents()
    except HostError as err:
        logging.getLogger("gureum.agent").warning("host network left in place: %s", err)
