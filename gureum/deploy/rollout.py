"""Waiting for a release to serve: instances, health checks, instance refreshes, shown as
they happen; and the app's own output (its journal, read on the host) when it fails."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from gureum.config import Config
from gureum.deploy import DeployError
from gureum.deploy.release import UNIT
from gureum.deploy.resources import Api, names

console = Console(stderr=True, highlight=False, soft_wrap=True)
# systemd in a container says this at every start of a unit: nothing the user can act on.
NOISE = "Failed to get cgroup ID of cgroup"


def journal(cfg: Config, instance_id: str, lines: int = 25) -> str:
    """The app unit's journal of a running instance, read from its disk on the host."""
    directory = cfg.instances_dir / instance_id / "rootfs" / "var" / "log" / "journal"
    if not directory.is_dir():
        return ""
    try:
        proc = subprocess.run(["journalctl", "--directory", str(directory), "-u", UNIT,
                               "--no-pager", "-o", "short", "-n", str(lines)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    kept = [line for line in proc.stdout.splitlines()
            if line.strip() and not line.startswith("-- ") and NOISE not in line]
    return "\n".join(kept)


def journal_since(cfg: Config, instance_id: str, cursor: str | None,
                  lines: int) -> tuple[list[str], str | None]:
    """The app unit's new lines after `cursor` (the last `lines` when None), and the
    cursor to continue from."""
    directory = cfg.instances_dir / instance_id / "rootfs" / "var" / "log" / "journal"
    if not directory.is_dir():
        return [], cursor
    where = ["--after-cursor", cursor] if cursor else ["-n", str(lines)]
    try:
        proc = subprocess.run(["journalctl", "--directory", str(directory), "-u", UNIT,
                               "--no-pager", "-o", "short", "--show-cursor", *where],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return [], cursor
    kept = []
    for line in proc.stdout.splitlines():
        if line.startswith("-- cursor: "):
            cursor = line.removeprefix("-- cursor: ").strip()
        elif line.strip() and not line.startswith("-- ") and NOISE not in line:
            kept.append(line)
    return kept, cursor


@dataclass
class Watch:
    """What was seen of a release's instances while waiting (kept after they are gone)."""

    cfg: Config
    version: str
    outputs: dict[str, str] = field(default_factory=dict)
    last_read: float = 0.0

    def observe(self, members: list[dict[str, Any]], every: float = 1.5) -> None:
        if time.monotonic() - self.last_read < every:
            return
        self.last_read = time.monotonic()
        for m in members:
            if str(m.get("LaunchTemplate", {}).get("Version")) == self.version:
                text = journal(self.cfg, m["InstanceId"])
                if text:
                    self.outputs[m["InstanceId"]] = text

    def failing_output(self, instance_id: str | None = None) -> str:
        if instance_id and instance_id in self.outputs:
            return f"{instance_id}:\n{self.outputs[instance_id]}"
        for iid, text in self.outputs.items():
            return f"{iid}:\n{text}"
        return "(the app wrote nothing to its journal)"


def members(api: Api, app: str) -> list[dict[str, Any]]:
    groups = api.asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[names(app)])["AutoScalingGroups"]
    return list(groups[0]["Instances"]) if groups else []


def target_health(api: Api, tg_arn: str) -> dict[str, dict[str, Any]]:
    try:
        found = api.elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    except ClientError:
        return {}
    return {d["Target"]["Id"]: d["TargetHealth"] for d in found}


def failed_launch(api: Api, app: str, since: float) -> str | None:
    for act in api.asg.describe_scaling_activities(
            AutoScalingGroupName=names(app), MaxRecords=20)["Activities"]:
        if act.get("StatusCode") == "Failed" and act["StartTime"].timestamp() >= since - 1:
            return str(act.get("StatusMessage") or act.get("Description"))
    return None


def wait_first(api: Api, cfg: Config, app: str, tg_arn: str, version: str, desired: int,
               grace: int, timeout: float, status: Any) -> float:
    """Until every instance of a first deploy is healthy behind the load balancer. Returns
    the seconds until the first one was. A member that fails its checks (or a launch
    that fails) stops the wait with the app's own output."""
    watch = Watch(cfg, version)
    started, first = time.monotonic(), None
    wall = time.time()
    deadline = started + timeout + grace
    while True:
        now = time.monotonic()
        group = members(api, app)
        watch.observe(group)
        health = target_health(api, tg_arn)
        healthy = [m for m in group if health.get(m["InstanceId"], {}).get("State") == "healthy"]
        if healthy and first is None:
            first = now - started
            console.print(f"  [green]✓[/] first instance healthy after {first:.1f} s")
        in_service = sum(m["LifecycleState"] == "InService" for m in group)
        status.update(f"instances {len(group)}/{desired}, in service {in_service}, "
                      f"healthy {len(healthy)}/{desired}")
        if len(healthy) >= desired:
            return first if first is not None else now - started
        bad = [m for m in group if m.get("HealthStatus") == "Unhealthy"]
        failure = failed_launch(api, app, wall)
        if bad or failure or now > deadline:
            watch.last_read = 0
            watch.observe(group)
            iid = bad[0]["InstanceId"] if bad else None
            reason = (f"instance {iid} failed its health check" if bad else
                      f"a launch failed: {failure}" if failure else
                      f"no instance became healthy within {timeout + grace:.0f} s")
            raise DeployError(f"the app did not become healthy: {reason}",
                              watch.failing_output(iid))
        time.sleep(0.5)


def wait_refresh(api: Api, cfg: Config, app: str, refresh_id: str, version: str,
                 status: Any, timeout: float = 600) -> str:
    """Until the instance refresh ends; its final status. Raises with the failing
    instance's output when it failed or rolled back."""
    watch = Watch(cfg, version)
    deadline = time.monotonic() + timeout
    while True:
        group = members(api, app)
        watch.observe(group)
        refresh = api.asg.describe_instance_refreshes(
            AutoScalingGroupName=names(app), InstanceRefreshIds=[refresh_id])[
            "InstanceRefreshes"][0]
        state = refresh["Status"]
        new = sum(str(m.get("LaunchTemplate", {}).get("Version")) == version for m in group)
        status.update(f"instance refresh {state} {refresh.get('PercentageComplete', 0)}%: "
                      f"{new} new, {len(group) - new} old instance(s)")
        if state == "Successful":
            return state
        if state in ("RollbackSuccessful", "Failed", "RollbackFailed", "Cancelled"):
            watch.last_read = 0
            watch.observe(group)
            reason = refresh.get("StatusReason") or state
            failed = None
            for word in str(reason).split():
                if word.startswith("i-"):
                    failed = word
            raise DeployError(f"the release was not deployed: {reason} ({state})",
                              watch.failing_output(failed))
        if time.monotonic() > deadline:
            api.asg.cancel_instance_refresh(AutoScalingGroupName=names(app))
            raise DeployError(f"the instance refresh did not end within {timeout:.0f} s; "
                              "cancelled", watch.failing_output())
        time.sleep(0.5)
