"""`gureum deploy`, `apps`, `releases`, `rollback`, `destroy`, `scale`, `env`."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from gureum.config import Config
from gureum.deploy import DeployError, release, resources, spec
from gureum.deploy.resources import (
    APP_TAG,
    RELEASE_TAG,
    Api,
    app_host,
    error_text,
    names,
    tag_map,
)
from gureum.deploy.rollout import (
    console,
    journal,
    journal_since,
    members,
    wait_first,
    wait_refresh,
)

# Tables go to stdout, whole (a pipe gets wide lines, not truncated ones).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
REFRESH_PREFERENCES = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200,
                       "InstanceWarmup": 0, "SkipMatching": True,
                       "AutoRollback": True}


def guarded(fn: Callable[..., int]) -> Callable[..., int]:
    """AWS and input errors become one clear message and exit status 1."""
    def run(*args: Any, **kwargs: Any) -> int:
        try:
            return fn(*args, **kwargs)
        except DeployError as err:
            console.print(f"[bold red]gureum: {err.message}[/]")
            if err.detail:
                console.print("[dim]---- the app's output ----[/]")
                console.print(err.detail, markup=False)
            return 1
        except ClientError as err:
            console.print(f"[bold red]gureum: the cloud refused: {error_text(err)}[/]")
            return 1
        except BotoCoreError as err:
            console.print(f"[bold red]gureum: cannot talk to the cloud: {err}[/]")
            return 1
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: what was started goes on in the cloud[/]")
            return 130
    return run


def _step(label: str, started: float) -> None:
    console.print(f"  [green]✓[/] {label} [dim]({time.monotonic() - started:.1f} s)[/]")


def _current(api: Api, app: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the app's group, the image of its current release)."""
    group = resources.find_group(api, app)
    if group is None:
        return None, None
    if APP_TAG not in tag_map(group.get("Tags")):
        raise DeployError(f"the name {app!r} is taken: an Auto Scaling group {names(app)} "
                          "exists that gureum deploy did not make")
    current = tag_map(group.get("Tags")).get(RELEASE_TAG)
    for image in resources.releases(api, app):
        if tag_map(image.get("Tags")).get(RELEASE_TAG) == current:
            return group, image
    return group, None


def _next_release(api: Api, app: str) -> str:
    numbers = [resources.release_number(tag_map(i.get("Tags")).get(RELEASE_TAG))
               for i in resources.releases(api, app)]
    return f"v{max(numbers, default=0) + 1}"


def _show_address(api: Api, cfg: Config, app: str, domains: list[str] | None = None) -> None:
    lb = resources.find_lb(api)
    if lb is None:
        return
    address = resources._lb_address(lb)
    host = app_host(app, api.region)
    https = resources._listener(api, lb["LoadBalancerArn"], resources.HTTPS_PORT) is not None
    console.print(f"[bold green]{app}[/] is live at [bold]http://{host}/[/]"
                  + (f" and [bold]https://{host}/[/]" if https else ""))
    console.print(f"  load balancer {lb['DNSName']} -> public address {address}")
    console.print(f"  try: curl -H 'Host: {host}' http://{address}/")
    for domain in domains or []:
        console.print(f"  {domain}: point its DNS (an A record) at {address}")
    if https:
        from gureum.pki import CloudCA  # cryptography: only here, not at every command's start

        console.print(f"  HTTPS certificates are signed by the cloud's CA: "
                      f"{CloudCA(cfg.data_dir).cert_path} (curl --cacert it, or trust it)")
    if cfg.dns_listen:
        dns_host, _, dns_port = cfg.dns_listen.rpartition(":")
        console.print(f"  or resolve it with gureum's DNS: dig @{dns_host} -p {dns_port} {host}")
    if cfg.publish_address:
        console.print(f"  published on {cfg.publish_address}:{resources.LISTENER_PORT}")


ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress")


def _supersede_refresh(api: Api, app: str, timeout: float = 180) -> None:
    """A refresh left rolling by an interrupted deploy (its command or the cloud died) is
    cancelled: this deploy's release supersedes it. Its instances stay; the new refresh
    replaces whatever is not on the new release."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = [r for r in api.asg.describe_instance_refreshes(
            AutoScalingGroupName=names(app))["InstanceRefreshes"]
            if r["Status"] in ACTIVE_REFRESH]
        if not active:
            return
        if active[0]["Status"] in ("Pending", "InProgress"):
            console.print(f"  an earlier deploy's refresh {active[0]['InstanceRefreshId']} "
                          "is still rolling: cancelling it")
            with contextlib.suppress(ClientError):  # it ended meanwhile
                api.asg.cancel_instance_refresh(AutoScalingGroupName=names(app))
        time.sleep(0.5)
    raise DeployError(f"an earlier instance refresh of {app} did not end within "
                      f"{timeout:.0f} s; see `aws autoscaling describe-instance-refreshes`")


def _roll(api: Api, cfg: Config, app: str, image_id: str, rel: str, instance_type: str | None,
          group: dict[str, Any], status: Any) -> None:
    """A new template version for `image_id`, then an instance refresh to it."""
    t0 = time.monotonic()
    template = resources.find_template(api, app)
    if template is None:
        raise DeployError(f"the launch template {names(app)} is gone: `gureum destroy {app}` "
                          "and deploy again")
    latest = resources.template_versions(api, template["LaunchTemplateId"])
    data = max(latest, key=lambda v: v["VersionNumber"])["LaunchTemplateData"]
    groups = data.get("SecurityGroupIds") or []
    template_id, version = resources.new_template_version(
        api, app, image_id, instance_type or data.get("InstanceType", "t3.micro"),
        groups[0] if groups else "", rel)
    _supersede_refresh(api, app)
    refresh_id = api.asg.start_instance_refresh(
        AutoScalingGroupName=names(app), Strategy="Rolling",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template_id,
                                                 "Version": version}},
        Preferences=REFRESH_PREFERENCES)["InstanceRefreshId"]
    _step(f"launch template version {version}, instance refresh started", t0)
    t1 = time.monotonic()
    wait_refresh(api, cfg, app, refresh_id, version, status)
    resources.set_release_tag(api, app, rel)
    count = len(members(api, app))
    _step(f"all traffic on {rel} ({count} instance{'' if count == 1 else 's'})", t1)


@guarded
def deploy(cfg: Config, path: str, name: str | None, profile: str = "gureum",
           domains: list[str] | None = None, certificate: str | None = None) -> int:
    started = time.monotonic()
    app_spec = spec.load(path, name)
    if domains:
        app_spec.domains = spec.check_domains(app_spec.domains + domains)
    if certificate:
        app_spec.certificate = certificate
    app = app_spec.name
    api = Api(cfg, profile)
    group, current = _current(api, app)
    rel = _next_release(api, app)
    env = {**(release.read_env(cfg, current["ImageId"]) if current else {}), **app_spec.env}
    console.print(f"[bold]deploying {app}[/] {rel} ({app_spec.kind} app: "
                  f"[cyan]{app_spec.start}[/] on port {app_spec.port})")
    with console.status("building the release") as status:
        t0 = time.monotonic()
        built = release.build(cfg, api.account_id, app_spec, app, rel, env)
        resources.tag_release(api, built.image_id, app, rel)
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in built.seconds.items())
        _step(f"release image {built.image_id} ({built.name}; {parts})", t0)
        if group is not None:
            try:
                _roll(api, cfg, app, built.image_id, rel, app_spec.instance_type, group, status)
            except DeployError:
                # The release never served: its image goes (the old one still serves).
                api.ec2.deregister_image(ImageId=built.image_id)
                raise
            # Names and certificates follow gureum.toml (and --domain) at every deploy.
            resources.ensure_routes(api, app, resources.ensure_shared(api),
                                    group["TargetGroupARNs"][0], app_spec.domains,
                                    app_spec.certificate)
        else:
            status.update("creating the app's resources")
            t1 = time.monotonic()
            try:
                shared = resources.ensure_shared(api)
                app_group, tg_arn = resources.prepare_app(api, app, app_spec.port,
                                                          app_spec.health_path, shared)
                template_id, version = resources.new_template_version(
                    api, app, built.image_id, app_spec.instance_type, app_group, rel)
                resources.ensure_routes(api, app, shared, tg_arn, app_spec.domains,
                                        app_spec.certificate)
                resources.create_app(api, app, shared, tg_arn, template_id, version,
                                     app_spec.min_size, app_spec.max_size, app_spec.grace, rel)
                _step(f"load balancer {resources.LB_NAME}, rule {app_host(app, api.region)}, "
                      f"target group, launch template, Auto Scaling group "
                      f"(min {app_spec.min_size})", t1)
                t2 = time.monotonic()
                wait_first(api, cfg, app, tg_arn, version, app_spec.min_size,
                           app_spec.grace, 90, status)
                _step(f"{app_spec.min_size} instance(s) healthy behind the load balancer", t2)
            except BaseException as err:  # noqa: BLE001 (re-raised)
                # A first deploy that fails leaves nothing behind.
                status.update("removing what this deploy made")
                try:
                    resources.destroy(api, app, lambda _msg: None)
                except (ClientError, BotoCoreError, DeployError) as cleanup:
                    console.print(f"[yellow]cleanup incomplete: {error_text(cleanup)}[/]")
                raise err
    pruned = _prune_releases(api, app, built.image_id)
    if pruned:
        console.print(f"[dim]{len(pruned)} old release image(s) removed: only the last "
                      f"{KEEP_RELEASES} are kept for rollback[/]")
    console.print(f"[dim]deployed in {time.monotonic() - started:.1f} s[/]")
    _show_address(api, cfg, app, app_spec.domains)
    return 0


KEEP_RELEASES = 5  # images an app keeps to roll back to (the one serving among them)


def _prune_releases(api: Api, app: str, serving: str) -> list[str]:
    """Release images beyond the newest KEEP_RELEASES go (deregistered: the cloud removes
    their roots once no instance runs from them)."""
    found = sorted(resources.releases(api, app), key=lambda i: resources.release_number(
        tag_map(i.get("Tags")).get(RELEASE_TAG)))
    old = [i["ImageId"] for i in found[:-KEEP_RELEASES] if i["ImageId"] != serving]
    for image_id in old:
        with contextlib.suppress(ClientError):
            api.ec2.deregister_image(ImageId=image_id)
    return old


@guarded
def apps(cfg: Config, profile: str = "gureum") -> int:
    api = Api(cfg, profile)
    table = Table("app", "release", "instances", "url")
    for group in resources.app_groups(api):
        t = tag_map(group.get("Tags"))
        healthy = sum(m["LifecycleState"] == "InService" for m in group["Instances"])
        table.add_row(t[APP_TAG], t.get(RELEASE_TAG, "?"),
                      f"{healthy}/{group['DesiredCapacity']} in service",
                      f"http://{app_host(t[APP_TAG], api.region)}/")
    out.print(table)
    return 0


@guarded
def releases(cfg: Config, app: str, profile: str = "gureum") -> int:
    api = Api(cfg, profile)
    group, current = _current(api, app)
    found = resources.releases(api, app)
    if group is None and not found:
        raise DeployError(f"no app named {app!r}")
    table = Table("release", "image", "created", "")
    for image in found:
        t = tag_map(image.get("Tags"))
        mark = "current" if current and image["ImageId"] == current["ImageId"] else ""
        table.add_row(t.get(RELEASE_TAG, "?"), image["ImageId"], image.get("CreationDate", ""),
                      mark)
    out.print(table)
    return 0


@guarded
def rollback(cfg: Config, app: str, to: str | None, profile: str = "gureum") -> int:
    started = time.monotonic()
    api = Api(cfg, profile)
    group, current = _current(api, app)
    if group is None:
        raise DeployError(f"no app named {app!r}")
    found = resources.releases(api, app)
    now = resources.release_number(tag_map(current.get("Tags")).get(RELEASE_TAG)) \
        if current else 0
    if to is None:
        older = [i for i in found
                 if resources.release_number(tag_map(i.get("Tags")).get(RELEASE_TAG)) < now]
        if not older:
            raise DeployError(f"{app} has no release before the current one")
        target = older[-1]
    else:
        target = next((i for i in found if tag_map(i.get("Tags")).get(RELEASE_TAG) == to), None)
        if target is None:
            raise DeployError(f"{app} has no release {to!r} (see `gureum releases {app}`)")
    if current is not None and target["ImageId"] == current["ImageId"]:
        raise DeployError(f"{app} already runs {to}")
    rel = tag_map(target.get("Tags"))[RELEASE_TAG]
    console.print(f"[bold]rolling {app} back to {rel}[/] ({target['ImageId']})")
    with console.status("rolling back") as status:
        _roll(api, cfg, app, target["ImageId"], rel, None, group, status)
    console.print(f"[dim]rolled back in {time.monotonic() - started:.1f} s[/]")
    return 0


@guarded
def destroy(cfg: Config, app: str, yes: bool, profile: str = "gureum") -> int:
    api = Api(cfg, profile)
    group, _ = _current(api, app)
    if group is None and not resources.releases(api, app) and \
            resources.find_template(api, app) is None:
        raise DeployError(f"no app named {app!r}")
    if not yes:
        raise DeployError(f"this removes {app}'s instances, load balancer rule, target group, "
                          f"launch template, security group and every release image: "
                          f"run again with --yes")
    with console.status(f"destroying {app}") as status:
        removed = resources.destroy(api, app, status.update)
    for item in removed:
        console.print(f"  [red]-[/] {item}")
    console.print(f"[bold]{app} destroyed[/]")
    return 0


@guarded
def scale(cfg: Config, app: str, count: int | None, min_size: int | None,
          max_size: int | None, cpu_target: float | None = None,
          profile: str = "gureum") -> int:
    """Instance count and bounds; `cpu_target` keeps the group's average CPU near that
    percentage with a target tracking policy (0 removes it)."""
    api = Api(cfg, profile)
    group, _ = _current(api, app)
    if group is None:
        raise DeployError(f"no app named {app!r}")
    low = min_size if min_size is not None else group["MinSize"]
    high = max_size if max_size is not None else group["MaxSize"]
    if count is not None:
        low, high = min(low, count), max(high, count)
    if low > high:
        raise DeployError(f"min {low} is above max {high}")
    if cpu_target is not None and not 0 <= cpu_target <= 100:
        raise DeployError(f"--cpu-target {cpu_target:g}: a percentage from 1 to 100 (0 removes it)")
    params: dict[str, Any] = {"AutoScalingGroupName": names(app), "MinSize": low,
                              "MaxSize": high}
    if count is not None:
        params["DesiredCapacity"] = count
    api.asg.update_auto_scaling_group(**params)
    said = f"{app}: min {low}, max {high}" + (f", desired {count}" if count is not None else "")
    if cpu_target is not None:
        said += ", " + resources.track_cpu(api, app, cpu_target)
    console.print(said)
    return 0


@guarded
def env(cfg: Config, app: str, action: str, pairs: list[str], profile: str = "gureum") -> int:
    """`env APP` lists; `env APP set K=V ...` / `unset K ...` make a new release of the
    same code with the new environment and roll it out."""
    api = Api(cfg, profile)
    group, current = _current(api, app)
    if group is None or current is None:
        raise DeployError(f"no app named {app!r}")
    values = release.read_env(cfg, current["ImageId"])
    if action == "list":
        for key in sorted(values):
            print(f"{key}={values[key]}")
        return 0
    new = dict(values)
    if action == "set":
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise DeployError(f"{pair!r}: expected NAME=value")
            new.update(spec.check_env({key: value}))
    else:
        for key in pairs:
            new.pop(key, None)
    if new == values:
        console.print("nothing changed")
        return 0
    rel = _next_release(api, app)
    changed = sorted(k for k in set(new) | set(values) if new.get(k) != values.get(k))
    console.print(f"[bold]{app}[/] {rel}: the code of "
                  f"{tag_map(current.get('Tags')).get(RELEASE_TAG)}, {', '.join(changed)} changed")
    with console.status("building the release") as status:
        t0 = time.monotonic()
        built = release.build(cfg, api.account_id, None, app, rel, new,
                              parent_image=current["ImageId"])
        resources.tag_release(api, built.image_id, app, rel)
        _step(f"release image {built.image_id}", t0)
        try:
            _roll(api, cfg, app, built.image_id, rel, None, group, status)
        except DeployError:
            api.ec2.deregister_image(ImageId=built.image_id)
            raise
    return 0


@guarded
def logs(cfg: Config, app: str, lines: int, profile: str = "gureum",
         follow: bool = False) -> int:
    """Every instance's app output, labelled by instance; with `follow`, new lines as they
    come, from instances as they join (a scale-out, a new release) until Ctrl-C."""
    api = Api(cfg, profile)
    group, _ = _current(api, app)
    if group is None:
        raise DeployError(f"no app named {app!r}")
    if not follow:
        for m in group["Instances"]:
            text = journal(cfg, m["InstanceId"], lines)
            for line in text.splitlines():
                print(f"{m['InstanceId']} | {line}")
        return 0
    cursors: dict[str, str | None] = {}
    try:
        while True:
            group, _ = _current(api, app)
            if group is None:
                raise DeployError(f"{app} was destroyed")
            for m in group["Instances"]:
                iid = m["InstanceId"]
                new, cursors[iid] = journal_since(cfg, iid, cursors.get(iid), lines)
                for line in new:
                    print(f"{iid} | {line}", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
