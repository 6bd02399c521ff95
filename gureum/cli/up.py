"""`gureum up`: build the image if needed, start agent, controllers and API, serve."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from gureum import interpreter
from gureum.agent import image as image_mod
from gureum.agent.contract import AgentContract
from gureum.api import tls as api_tls
from gureum.api.dns_server import PublicDns
from gureum.api.server import ApiServer
from gureum.cloud import Cloud
from gureum.config import Config
from gureum.controllers.leadership import Leadership
from gureum.errors import HostError
from gureum.hosts import registry
from gureum.stop_signals import on_stop_signal, wait_until_set
from gureum.store.postgres import ChangeFeed

console = Console(stderr=True)


def build_image(cfg: Config, force: bool = False) -> image_mod.Image:
    """Every image of the cloud built (cached by recipe); returns the default one."""
    found = image_mod.images(cfg.image_cache)
    for img in found:
        _build_one(img, force)
    return found[0]


def _build_one(img: image_mod.Image, force: bool) -> None:
    if image_mod.is_built(img) and not force:
        return
    # mmdebstrap prints one line per step; the bar advances on the steps it names.
    stages = ["setup", "download", "extract", "install", "customize", "cleanup"]
    with Progress(SpinnerColumn(), TextColumn(f"[bold]building {img.name}[/]"), BarColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("starting mmdebstrap", total=len(stages))

        def on_line(line: str) -> None:
            for i, stage in enumerate(stages):
                if line.startswith(f"I: {stage}") or f" {stage}" in line[:40]:
                    bar.update(task, completed=max(i, bar.tasks[0].completed))
            bar.update(task, description=line[:60])

        image_mod.build(img, on_line=on_line, force=force)
        bar.update(task, completed=len(stages), description="done")


@dataclass
class RunningCloud:
    """A started cloud: store, agent, controllers and API server, in this process."""

    cloud: Cloud
    server: ApiServer
    access_key: str
    secret_key: str
    account_id: str
    leadership: Leadership
    dns: PublicDns | None = None
    changes: ChangeFeed | None = None

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.dns is not None:
            self.dns.stop()
        self.leadership.stop()  # the controllers stop with it
        self.cloud.heartbeats.stop()
        if self.changes is not None:
            self.changes.stop()


CONTROLLERS = ("controller", "firewall_controller", "network_controller",
               "load_balancer_controller", "metrics_controller", "autoscaling_controller",
               "ebs_controller", "hosts_controller")


def start_controllers(cloud: Cloud) -> None:
    """This control plane leads: build and start every controller (new objects each time:
    a loop's thread runs once)."""
    from gureum.controllers.autoscaling import AutoScalingController
    from gureum.controllers.ebs import EbsController
    from gureum.controllers.firewall import FirewallController
    from gureum.controllers.hosts import HostsController
    from gureum.controllers.instances import InstanceController
    from gureum.controllers.load_balancers import LoadBalancerController
    from gureum.controllers.metrics import MetricsController
    from gureum.controllers.network import NetworkController

    cloud.controller = InstanceController(cloud)
    cloud.firewall_controller = FirewallController(cloud)
    cloud.network_controller = NetworkController(cloud)
    cloud.load_balancer_controller = LoadBalancerController(cloud)
    cloud.metrics_controller = MetricsController(cloud)
    cloud.autoscaling_controller = AutoScalingController(cloud)
    cloud.ebs_controller = EbsController(cloud)
    cloud.hosts_controller = HostsController(cloud)
    for name in CONTROLLERS:
        getattr(cloud, name).start()


def stop_controllers(cloud: Cloud) -> None:
    """No longer the leader (or shutting down): every controller stops, then is forgotten
    (a stopping one may still reach the others)."""
    for name in CONTROLLERS:
        controller = getattr(cloud, name)
        if controller is not None:
            controller.stop()
    for name in CONTROLLERS:
        setattr(cloud, name, None)


def start_cloud(cfg: Config, agent: AgentContract | None = None) -> RunningCloud:
    """Controllers and API of a cloud whose image is ready. `agent` replaces the host's
    own (the fast test tier passes a FakeAgent). On PostgreSQL the controllers run only
    while this process leads (`controllers/leadership.py`)."""
    from gureum.api.server import serve

    cloud = Cloud(cfg, agent=agent)
    cloud.register_default_image()
    account_id, access, secret = cloud.ensure_default_account()
    cloud.control_host_id = registry.register_control_host(cloud.store, cfg).host_id
    cloud.heartbeats.start()
    changes = cloud.store.change_feed()
    if changes is not None:
        changes.start()
    leadership = Leadership(cloud.store, lambda: start_controllers(cloud),
                            lambda: stop_controllers(cloud), cfg.leader_retry_seconds)
    leadership.start()
    dns = None
    if cfg.dns_listen:
        host, _, port = cfg.dns_listen.rpartition(":")
        try:
            dns = PublicDns(cloud, host, int(port))
        except OSError as err:  # a taken port must not keep the cloud down
            console.print(f"[yellow]public DNS off: cannot listen on {cfg.dns_listen}: {err}[/]")
        else:
            dns.start()
    server = serve(cloud, cfg.host, cfg.port, api_tls.server_context(cfg, cloud.ca))
    return RunningCloud(cloud, server, access, secret, account_id, leadership, dns, changes)


def up(cfg: Config, profile: str = "gureum", write_profile: bool = True) -> int:
    from gureum.cli.profile import write_profile as write

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=[logging.FileHandler(cfg.data_dir / "gureum.log")])
    img = build_image(cfg)
    # The profile exists before the port opens: whoever sees the port can use it.
    cloud = Cloud(cfg, with_agent=False)
    account_id, access, secret = cloud.ensure_default_account()
    cloud.ca.ensure()  # before the profile names it as the endpoint's ca_bundle
    api_tls.server_context(cfg, cloud.ca)  # a refused listener stops here, before the profile
    ca_bundle = api_tls.ca_bundle(cfg)
    if write_profile:
        config_path, _ = write(profile, access, secret, cfg.region, cfg.endpoint, ca_bundle)
        profile_line = f"profile [bold]{profile}[/] written to {config_path}"
    else:
        profile_line = "no AWS profile written (--no-profile)"
    running = start_cloud(cfg)
    console.print(f"[bold green]gureum is up[/] at [bold]{cfg.endpoint}[/] "
                  f"(region {cfg.region}, data {cfg.data_dir}, prefix {cfg.prefix})")
    console.print(f"account {account_id}; {profile_line}")
    join = registry.join_token(running.cloud.store, cfg)
    console.print(f"other hosts join with: gureum agent --join {cfg.endpoint} --token {join} "
                  "--name NAME --zone ZONE --listen ADDR:PORT --ca <a copy of the CA below> "
                  "(`gureum host token` prints it again)", soft_wrap=True)
    if ca_bundle is not None and ca_bundle.exists():
        console.print(f"the API is HTTPS only; clients verify it with {ca_bundle} "
                      f"(SHA-256 {api_tls.fingerprint(ca_bundle)}; the profile's ca_bundle)",
                      soft_wrap=True)
        if os.environ.get("AWS_CA_BUNDLE", str(ca_bundle)) != str(ca_bundle):
            console.print(f"[yellow]AWS_CA_BUNDLE={os.environ['AWS_CA_BUNDLE']} is set here: "
                          "boto3 and the AWS CLI use it instead of the profile's ca_bundle "
                          "(unset it, or add the CA's certificate to that file)[/]")
    # One-time: the first visitor is signed in as the default account, then it is spent.
    console.print(f"web console: {running.server.console.sign_in_url(account_id)}",
                  soft_wrap=True)
    reach = (f"public addresses {cfg.public_pool} answer on {cfg.public_interface}"
             if cfg.public_interface else
             f"public addresses {cfg.public_pool} (loopback: this host only)")
    if cfg.publish_address:
        reach += f"; load balancer listeners published on {cfg.publish_address}"
    console.print(reach)
    if running.dns is not None:
        console.print(f"public DNS for load balancers and instances on {cfg.dns_listen} "
                      "(udp+tcp)")
    running.cloud.ca.ensure()
    console.print(f"certificate authority (it signs the certificates ACM issues; trust it "
                  f"for HTTPS to your load balancers): {running.cloud.ca.cert_path}")
    console.print("next: aws --profile gureum ec2 create-key-pair --key-name me "
                  "--query KeyMaterial --output text > me.pem && chmod 600 me.pem")
    # The standard image (systemd, like a Debian cloud image on EC2) is the one suggested:
    # its launch -> SSH p50 stays under 1 s; the small one boots fastest.
    found = image_mod.images(cfg.image_cache)
    standard = next((i for i in found if i.init_system == "systemd" and image_mod.is_built(i)),
                    img)
    console.print(f"      aws --profile gureum ec2 run-instances --image-id {standard.image_id} "
                  "--instance-type t3.micro --key-name me")
    for other in found:
        console.print(f"images: {other.image_id} {other.name}"
                      + (" (standard: systemd as init, like Debian on EC2)"
                         if other.init_system == "systemd" else
                         " (small: sshd under tini, fastest boot)"))
    interpreter.settle()
    print(f"READY {cfg.endpoint}", flush=True)

    # `kill -USR1 <pid>` prints every thread's stack: how to see where a stop hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    done = on_stop_signal()
    wait_until_set(done)
    console.print("gureum: shutting down (instances keep running)")
    running.shutdown()
    _release_idle_host_network(running.cloud)
    return 0


def _release_idle_host_network(cloud) -> None:  # noqa: ANN001
    """With no instance left on the host, the VPC routers and nft table go too."""
    from sqlalchemy import func, select

    from gureum.store import models

    with cloud.store.read() as s:
        live = s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.state != "terminated")) or 0
    if live == 0 and cloud.agent is not None:
        try:
            for vpc_id in cloud.agent.vpc_routers():
                cloud.agent.remove_vpc(vpc_id)
            cloud.agent.remove_host_network()
            cloud.agent.remove_cgroup_parents()
        except HostError as err:  # a separate agent that is already gone
            console.print(f"gureum: host network left in place: {err}")


if __name__ == "__main__":
    sys.exit(up(Config()))
