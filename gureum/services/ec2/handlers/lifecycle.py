"""Start, stop, reboot, terminate: validate, record the wanted state, wake the controller."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import state
from gureum.store.models import Instance, utcnow


def _change(inst: Instance, new_state: str, desired: str, reason: str = "") -> None:
    inst.transition(new_state, desired)
    if reason:
        stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S GMT")
        inst.state_transition_reason = f"{reason} ({stamp})"


def _transitions(ctx: RequestContext, p: dict[str, Any], key: str, apply) -> dict[str, Any]:  # noqa: ANN001
    with ctx.cloud.store.write() as s:
        rows = common.instances_by_id(s, ctx.account_id, p["InstanceIds"])
        changes = []
        for inst in rows:
            before = inst.state
            apply(inst)
            changes.append({"InstanceId": inst.instance_id, "PreviousState": state(before),
                            "CurrentState": state(inst.state)})
    return {key: changes}


@action("ec2", "StopInstances")
def stop_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    def apply(inst: Instance) -> None:
        if inst.state in ("shutting-down", "terminated"):
            raise exc.IncorrectInstanceState(
                f"This instance '{inst.instance_id}' is not in a state from which it can be stopped.")
        if inst.state in ("pending", "running") or (inst.state == "stopping" and p.get("Force")):
            _change(inst, "stopping", "stopped", "User initiated")
            inst.force_stop = bool(p.get("Force"))
            inst.state_reason_code = "Client.UserInitiatedShutdown"
            inst.state_reason_message = "Client.UserInitiatedShutdown: User initiated shutdown"
    return _transitions(ctx, p, "StoppingInstances", apply)


@action("ec2", "StartInstances")
def start_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    def apply(inst: Instance) -> None:
        if inst.state in ("shutting-down", "terminated", "stopping"):
            raise exc.IncorrectInstanceState(
                f"The instance '{inst.instance_id}' is not in a state from which it can be started.")
        if inst.state == "stopped":
            _change(inst, "pending", "running")
            inst.state_reason_code = None
            inst.state_reason_message = None
            inst.state_transition_reason = ""
    return _transitions(ctx, p, "StartingInstances", apply)


@action("ec2", "TerminateInstances")
def terminate_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("InstanceIds"):
        raise exc.InvalidParameterCombination("No instances specified")
    def apply(inst: Instance) -> None:
        if inst.disable_api_termination:
            raise exc.OperationNotPermitted(
                f"The instance '{inst.instance_id}' may not be terminated. Modify its "
                "'disableApiTermination' instance attribute and try again.")
        if inst.state not in ("shutting-down", "terminated"):
            begin_termination(inst, "User initiated")
    return _transitions(ctx, p, "TerminatingInstances", apply)


def begin_termination(inst: Instance, why: str) -> None:
    """shutting-down, on its way to terminated (the API's and Auto Scaling's way in)."""
    _change(inst, "shutting-down", "terminated", why)
    inst.state_reason_code = "Client.UserInitiatedShutdown"
    inst.state_reason_message = "Client.UserInitiatedShutdown: User initiated shutdown"


@action("ec2", "RebootInstances")
def reboot_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        rows = common.instances_by_id(s, ctx.account_id, p["InstanceIds"])
        for inst in rows:
            if inst.state not in ("pending", "running"):
                raise exc.IncorrectInstanceState(
                    f"The instance '{inst.instance_id}' is not in a state from which it can be rebooted.")
        for inst in rows:
            inst.reboot_requested += 1
    return {}
