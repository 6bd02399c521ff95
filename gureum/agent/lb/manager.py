"""Load balancers on one host: each has its own netns wired to its VPC's bridge like an
instance (a port with its address, anti-spoofing, its security groups as a firewall),
a public address when internet-facing, and an HAProxy serving its listeners."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from gureum.agent import firewall, idmap, network, wire
from gureum.agent.contract import HealthReport, LoadBalancerSpec
from gureum.agent.lb import haproxy, nlb, process, runtime_api
from gureum.agent.lb.process import LoadBalancerFiles
from gureum.agent.network import NetworkPlan
from gureum.errors import HostError

log = logging.getLogger("gureum.lb")


CONSOLIDATE_AFTER = 5.0  # seconds without a server change before the follow-up reload


def port_name(lb_id: str) -> str:
    """The netns suffix of a load balancer (`<prefix>-lb-<id>`)."""
    return f"lb-{lb_id}"


class LoadBalancers:
    def __init__(self, plan: NetworkPlan, root: Path) -> None:
        self.plan = plan
        self.root = root

    def files(self, lb_id: str) -> LoadBalancerFiles:
        return LoadBalancerFiles(self.root / lb_id)

    def ensure(self, spec: LoadBalancerSpec) -> None:
        files = self.files(spec.lb_id)
        files.dir.mkdir(parents=True, exist_ok=True)
        files.dir.chmod(0o700)
        key = port_name(spec.lb_id)
        netns = self.plan.netns(key)
        with contextlib.ExitStack() as undo:
            # What removal needs, recorded before anything is made.
            files.placement.write_text(json.dumps({
                "vpc_id": spec.vpc.vpc_id, "slot": spec.slot, "public_ip": spec.public_ip}))
            if not (network.NETNS_DIR / netns).exists():
                network.create_instance_netns(self.plan, spec.vpc.vpc_id, key, spec.slot,
                                              spec.private_ip, spec.subnet_cidr)
                undo.callback(network.delete_instance_netns, self.plan, spec.vpc.vpc_id, key,
                              spec.slot)
            elif not network.is_plumbed(self.plan, spec.vpc.vpc_id, spec.slot):
                network.plumb_instance(self.plan, spec.vpc.vpc_id, key, spec.slot,
                                       spec.private_ip, spec.subnet_cidr)
            if spec.firewall is not None:
                rules = firewall.render(spec.firewall)
                digest = files.dir / "firewall.sha256"
                wanted = hashlib.sha256(rules.encode()).hexdigest()
                if not digest.exists() or digest.read_text() != wanted:
                    firewall.apply(netns, spec.firewall)
                    digest.write_text(wanted)
            for frontend in spec.frontends:
                for index, pem in enumerate(haproxy.certificates(frontend)):
                    path = haproxy.certificate_file(files.dir, frontend.port, index)
                    path.touch(mode=0o600)  # private keys: readable by root only
                    path.write_text(pem)
            text = haproxy.render(spec, files.admin)
            current = files.config.read_text() if files.config.exists() else None
            pid = process.master_pid(files)
            changed = pid is None or current != text
            if changed and (pid is None or not self._change_servers_only(files, spec, text)):
                process.check_config(files, text)
                files.config.write_text(text)
                if pid is None:
                    process.start(files, netns)
                    undo.callback(process.stop, files)
                else:
                    process.reload(files)
            files.spec.write_text(json.dumps(wire.encode(spec)))
            if spec.mode == "tcp":
                self._forward(spec, files)
            if spec.public_ip:
                network.map_public_ip(self.plan, spec.public_ip, spec.private_ip,
                                      self.plan.mark(spec.vpc))
            undo.pop_all()

    def _change_servers_only(self, files: LoadBalancerFiles, spec: LoadBalancerSpec,
                             text: str) -> bool:
        """Apply a change of servers alone through the runtime API (no reload); False
        when the change is more than that, or the runtime API refused it."""
        try:
            old = wire.decode(json.loads(files.spec.read_text()), LoadBalancerSpec)
        except (OSError, ValueError, TypeError, KeyError):
            return False
        if haproxy.without_servers(old) != haproxy.without_servers(spec):
            return False
        try:
            runtime_api.apply(files, old, spec)
        except (HostError, OSError) as err:
            log.warning("load balancer %s: runtime change refused, reloading: %s",
                        spec.lb_id, err)
            return False
        files.config.write_text(text)  # what a later start or reload loads
        # Servers added at run time serve far fewer requests than configured ones in
        # HAProxy 2.6 (measured: 16k vs 44k req/s through one ALB): once changes settle,
        # a seamless reload makes them configured servers.
        files.consolidate.write_text(str(time.time() + CONSOLIDATE_AFTER))
        return True

    def refresh(self, lb_id: str) -> None:
        """Follow what changed since the last `ensure`: a network load balancer's
        forwarding follows its targets' health; servers changed at run time become
        configured ones once changes have settled."""
        files = self.files(lb_id)
        try:
            spec = wire.decode(json.loads(files.spec.read_text()), LoadBalancerSpec)
        except (OSError, ValueError, TypeError, KeyError):
            return
        if spec.mode == "tcp":
            self._forward(spec, files)
        try:
            due = float(files.consolidate.read_text())
        except (OSError, ValueError):
            return
        if time.time() >= due and process.master_pid(files) is not None:
            process.check_config(files, files.config.read_text())
            process.reload(files)
            files.consolidate.unlink(missing_ok=True)

    def _forward(self, spec: LoadBalancerSpec, files: LoadBalancerFiles) -> None:
        rules = nlb.ruleset(spec, self.health(spec.lb_id))
        digest = files.dir / "forwarding.sha256"
        router = self.plan.router_path(spec.vpc.vpc_id)
        # A remade router (new inode) lost the table: the digest covers which router it is.
        wanted = hashlib.sha256(f"{os.stat(router).st_ino}\n{rules}".encode()).hexdigest()
        if digest.exists() and digest.read_text() == wanted:
            return
        network.run_in(self.plan.router(spec.vpc.vpc_id), ["nft", "-f", "-"], input=rules)
        digest.write_text(wanted)

    def remove(self, lb_id: str) -> None:
        files = self.files(lb_id)
        process.stop(files)
        try:
            placement = json.loads(files.placement.read_text())
        except (OSError, ValueError):
            placement = None
        key = port_name(lb_id)
        if placement is not None and Path(self.plan.router_path(placement["vpc_id"])).exists():
            for table in (nlb.table_name(lb_id), nlb.stats_table(lb_id)):
                network.run_in(self.plan.router(placement["vpc_id"]),
                               ["nft", "delete", "table", "ip", table], check=False)
        if placement is not None:
            if placement.get("public_ip"):
                network.unmap_public_ip(self.plan, placement["public_ip"])
            network.delete_instance_netns(self.plan, placement["vpc_id"], key, placement["slot"])
        elif (network.NETNS_DIR / self.plan.netns(key)).exists():
            network.hostcmd.run(["ip", "netns", "del", self.plan.netns(key)])
        shutil.rmtree(files.dir, ignore_errors=True)

    def present(self) -> dict[str, bool]:
        if not self.root.exists():
            return {}
        return {d.name: process.master_pid(self.files(d.name)) is not None
                for d in self.root.iterdir() if d.is_dir()}

    def health(self, lb_id: str) -> HealthReport:
        files = self.files(lb_id)
        if process.master_pid(files) is None:
            return {}
        return haproxy.parse_stat(process.admin_command(files, "show stat"))

    def stats(self, lb_id: str) -> dict[str, float]:
        files = self.files(lb_id)
        if process.master_pid(files) is None:
            return {}
        try:
            spec = wire.decode(json.loads(files.spec.read_text()), LoadBalancerSpec)
        except (OSError, ValueError, TypeError, KeyError):
            return {}
        if spec.mode == "tcp":  # a network load balancer's traffic never meets its proxy
            stats = nlb.parse_counters(network.run_in(
                self.plan.router(spec.vpc.vpc_id),
                ["nft", "-j", "list", "counters", "table", "ip", nlb.stats_table(lb_id)],
                check=False))
            try:  # thread-self: the reading thread's netns, the router's
                table = idmap.in_netns(str(self.plan.router_path(spec.vpc.vpc_id)), lambda: Path(
                    "/proc/thread-self/net/nf_conntrack").read_text())
            except OSError:
                table = ""
            stats["ActiveFlowCount"] = float(nlb.active_flows(
                table, spec.private_ip, {f.port for f in spec.frontends}))
            return stats
        return haproxy.parse_totals(process.admin_command(files, "show stat"))

    def processes(self) -> list[str]:
        return [f"haproxy {lb_id} pid {process.master_pid(self.files(lb_id))}"
                for lb_id, up in self.present().items() if up]
