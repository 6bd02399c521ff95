"""Instance metadata options (IMDS) and console output."""

from __future__ import annotations

import base64
import logging
from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.errors import HostError
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import options_of
from gureum.store.models import utcnow

log = logging.getLogger("gureum.ec2.metadata")
CONSOLE_BYTES = 64 * 1024
OPTION_KEYS = ("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "InstanceMetadataTags",
               "HttpProtocolIpv6")


def validate_options(requested: dict[str, Any] | None) -> dict[str, Any]:
    options = {k: v for k, v in (requested or {}).items() if k in OPTION_KEYS}
    hops = options.get("HttpPutResponseHopLimit")
    if hops is not None and not 1 <= hops <= 64:
        raise exc.InvalidParameterValue(
            f"The HttpPutResponseHopLimit value '{hops}' is not valid. Specify a value from 1 to 64.")
    if options.get("HttpProtocolIpv6") == "enabled":
        raise exc.UnsupportedOperation("IPv6 metadata endpoints are not offered (instances are IPv4)")
    return options


@action("ec2", "ModifyInstanceMetadataOptions")
def modify_instance_metadata_options(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    options = validate_options(p)
    with ctx.cloud.store.write() as s:
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        if inst.state in ("shutting-down", "terminated"):
            raise exc.IncorrectInstanceState(
                f"The instance '{inst.instance_id}' is not in a state from which its metadata "
                "options can be modified.")
        inst.metadata_options = {**(inst.metadata_options or {}), **options}
        current = options_of(inst)
        running, vpc_id, host_id = inst.state == "running", inst.vpc_id, inst.host_id
    state = _apply_now(ctx, vpc_id, host_id) if running else "applied"
    return {"InstanceId": inst.instance_id,
            "InstanceMetadataOptions": {"State": state, **current}}


def _apply_now(ctx: RequestContext, vpc_id: str, host_id: str | None) -> str:
    """The host's metadata service answers from what the control plane pushed to it:
    push the VPC's answers before answering, so the next metadata read already sees the
    new options ('applied'). A control plane that does not run the controllers (another
    API server leads) or a host that cannot be reached leaves them to the loop: 'pending',
    as EC2 says while it is still applying them."""
    network = ctx.cloud.network_controller
    if network is None:
        return "pending"
    try:
        network.services.ensure_pushed(vpc_id, ctx.cloud.agents.key(host_id))
    except HostError as err:
        log.info("metadata options of VPC %s follow later: %s", vpc_id, err)
        return "pending"
    return "applied"


@action("ec2", "GetConsoleOutput")
def get_console_output(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
    out: dict[str, Any] = {"InstanceId": inst.instance_id, "Timestamp": utcnow()}
    agent = ctx.cloud.agent
    try:
        data = agent.console_tail(inst.instance_id, CONSOLE_BYTES) if agent else b""
    except HostError:  # the host is away: no output yet, as EC2 answers before it has any
        data = b""
    if data:
        out["Output"] = base64.b64encode(data).decode()
    return out
