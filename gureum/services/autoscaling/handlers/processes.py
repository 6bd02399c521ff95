"""SuspendProcesses and ResumeProcesses: the controller skips a suspended process."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.autoscaling import exceptions as exc
from gureum.services.autoscaling import resources as res


def _named(p: dict[str, Any]) -> list[str]:
    names = p.get("ScalingProcesses") or list(res.PROCESSES)
    bad = [n for n in names if n not in res.PROCESSES]
    if bad:
        raise exc.ValidationError(f"Invalid process name {bad[0][:64]}; valid: "
                                  f"{', '.join(res.PROCESSES)}")
    return names


@action("autoscaling", "SuspendProcesses")
def suspend_processes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names = _named(p)
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        g.suspended_processes = sorted(set(g.suspended_processes) | set(names))
    return {}


@action("autoscaling", "ResumeProcesses")
def resume_processes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names = _named(p)
    with ctx.cloud.store.write() as s:
        g = res.group(s, ctx.account_id, p["AutoScalingGroupName"])
        g.suspended_processes = sorted(set(g.suspended_processes) - set(names))
    return {}
