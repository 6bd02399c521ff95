"""DescribeInstanceAttribute and ModifyInstanceAttribute."""

from __future__ import annotations

import base64
from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import interfaces, volumes
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers import common
from gureum.services.ec2.handlers.instances import USER_DATA_LIMIT, check_capacity
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.services.ec2.views import ROOT_DEVICE, volume_id
from gureum.store.models import Instance


def _describe(inst: Instance, attribute: str) -> dict[str, Any]:
    if attribute == "instanceType":
        return {"InstanceType": {"Value": inst.instance_type}}
    if attribute == "userData":
        data = base64.b64encode(inst.user_data).decode() if inst.user_data else None
        return {"UserData": {"Value": data} if data else {}}
    if attribute == "disableApiTermination":
        return {"DisableApiTermination": {"Value": inst.disable_api_termination}}
    if attribute == "disableApiStop":
        return {"DisableApiStop": {"Value": False}}
    if attribute == "instanceInitiatedShutdownBehavior":
        return {"InstanceInitiatedShutdownBehavior": {"Value": "stop"}}
    if attribute == "rootDeviceName":
        return {"RootDeviceName": {"Value": ROOT_DEVICE}}
    if attribute == "blockDeviceMapping":
        return {"BlockDeviceMappings": [{"DeviceName": ROOT_DEVICE, "Ebs": {
            "VolumeId": volume_id(inst.instance_id), "Status": "attached",
            "AttachTime": inst.launch_time, "DeleteOnTermination": True}}]}
    if attribute == "groupSet":
        return {"Groups": [{"GroupId": g} for g in inst.security_group_ids]}
    if attribute == "ebsOptimized":
        return {"EbsOptimized": {"Value": False}}
    if attribute == "enaSupport":
        return {"EnaSupport": {"Value": True}}
    if attribute in ("kernel", "ramdisk"):
        return {attribute.capitalize() + "Id": {}}
    if attribute == "productCodes":
        return {"ProductCodes": []}
    if attribute == "sriovNetSupport":
        return {"SriovNetSupport": {}}
    if attribute == "enclaveOptions":
        return {"EnclaveOptions": {"Enabled": False}}
    raise exc.InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid.")


@action("ec2", "DescribeInstanceAttribute")
def describe_instance_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        if p["Attribute"] == "sourceDestCheck":
            primary = interfaces.primary_of(s, inst.instance_id)
            return {"InstanceId": inst.instance_id, "SourceDestCheck": {
                "Value": primary.source_dest_check if primary is not None else True}}
        if p["Attribute"] == "blockDeviceMapping":
            rows = volumes.of_instances(s, [inst.instance_id])[inst.instance_id]
            return {"InstanceId": inst.instance_id,
                    "BlockDeviceMappings": volumes.mappings(inst, rows or None)}
    return {"InstanceId": inst.instance_id, **_describe(inst, p["Attribute"])}


# Members gureum takes but cannot change, with the value every instance reports in
# DescribeInstanceAttribute (None: reported empty). Asking for that value is a no-op (tools
# such as Ansible send the current value back); anything else is UnsupportedOperation.
_FIXED: dict[str, tuple[str, Any]] = {  # member: (attribute name, current value)
    "EbsOptimized": ("ebsOptimized", False),
    "EnaSupport": ("enaSupport", True),
    "DisableApiStop": ("disableApiStop", False),
    "InstanceInitiatedShutdownBehavior": ("instanceInitiatedShutdownBehavior", "stop"),
    "Kernel": ("kernel", None),
    "Ramdisk": ("ramdisk", None),
    "SriovNetSupport": ("sriovNetSupport", None),
}
_APPLIED_MEMBERS = {"InstanceType", "UserData", "DisableApiTermination", "Groups",
                    "SourceDestCheck"}
_CHECKED_MEMBERS = {*_APPLIED_MEMBERS, *_FIXED, "EnclaveOptions", "BlockDeviceMappings",
                    "InstanceId", "DryRun", "Attribute", "Value"}
_APPLIED_ATTRIBUTES = {"instanceType", "userData", "disableApiTermination", "groupSet",
                       "sourceDestCheck"}


def _unsupported(member: str, value: Any, current: Any) -> exc.UnsupportedOperation:
    now = "not set" if current is None else repr(current)
    return exc.UnsupportedOperation(
        f"Modifying {member} to {value!r} is not supported: it is {now} on every gureum instance")


def _delete_on_termination(s: Any, inst: Instance, p: dict[str, Any]) -> None:
    """BlockDeviceMappings: only DeleteOnTermination of an attached volume changes (as on
    EC2); naming a device the instance does not have is InvalidInstanceAttributeValue."""
    mappings = p.get("BlockDeviceMappings") or []
    if not mappings:
        return
    attached = {v.device: v for v in volumes.of_instances(s, [inst.instance_id])[inst.instance_id]}
    for mapping in mappings:
        ebs = mapping.get("Ebs") or {}
        volume = attached.get(mapping.get("DeviceName"))
        if mapping.get("VirtualName") or mapping.get("NoDevice"):
            raise exc.UnsupportedOperation(
                "Only DeleteOnTermination of an attached EBS volume can be modified")
        if volume is None or ebs.get("VolumeId") not in (None, volume.volume_id):
            raise exc.InvalidInstanceAttributeValue(
                f"No device is currently mapped at {mapping.get('DeviceName')}")
        if ebs.get("DeleteOnTermination") is not None:
            volume.delete_on_termination = bool(ebs["DeleteOnTermination"])


def _refuse_unsupported(instance_id: str, p: dict[str, Any]) -> None:
    """UnsupportedOperation for the first requested change gureum would not apply."""
    for member in p:
        if member not in _CHECKED_MEMBERS:  # a member a newer botocore model added
            raise exc.UnsupportedOperation(f"Modifying {member} is not supported")
    for member, (_, current) in _FIXED.items():
        if member in p and (p[member] or {}).get("Value") != current:
            raise _unsupported(member, (p[member] or {}).get("Value"), current)
    if (p.get("EnclaveOptions") or {}).get("Enabled") not in (None, False):
        raise _unsupported("EnclaveOptions.Enabled", (p["EnclaveOptions"] or {}).get("Enabled"), False)
    attribute = p.get("Attribute")
    if attribute is None or attribute in _APPLIED_ATTRIBUTES:
        return
    value = p.get("Value")
    fixed = {name: current for name, current in _FIXED.values()}
    fixed["enclaveOptions"] = False
    if attribute not in fixed:
        raise exc.UnsupportedOperation(f"Modifying attribute '{attribute}' is not supported")
    current = fixed[attribute]
    same = (str(value).lower() == str(current).lower() if isinstance(current, bool)
            else value == current)
    if not same:
        raise _unsupported(attribute, value, current)


def _require_stopped(inst: Instance) -> None:
    if inst.state != "stopped":
        raise exc.IncorrectInstanceState(f"The instance '{inst.instance_id}' is not in the 'stopped' state.")


@action("ec2", "ModifyInstanceAttribute")
def modify_instance_attribute(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    changes = {k: v for k, v in p.items() if k not in ("InstanceId", "DryRun")}
    if not changes:
        raise exc.MissingParameter("The request must contain an attribute to modify")
    # One attribute per call, as on AWS (Attribute=...&Value=... is the old form of one).
    kinds = sorted({k[0].lower() + k[1:] for k in changes if k not in ("Attribute", "Value")}
                   | ({p["Attribute"]} if p.get("Attribute") else set()))
    if len(kinds) > 1:
        raise exc.InvalidParameterCombination(
            f"Fields for multiple attribute types specified: {', '.join(kinds)}")
    with ctx.cloud.store.write() as s:
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        _refuse_unsupported(inst.instance_id, p)  # before anything changes
        _delete_on_termination(s, inst, p)
        attribute, value = p.get("Attribute"), p.get("Value")
        new_type = (p.get("InstanceType") or {}).get("Value") or (
            value if attribute == "instanceType" else None)
        if new_type is not None:
            if new_type not in CATALOGUE:
                raise exc.InvalidParameterValue(f"Invalid value '{new_type}' for InstanceType.")
            check_capacity(ctx.cloud, new_type)
            _require_stopped(inst)
            inst.instance_type = new_type
        if "UserData" in p or attribute == "userData":
            raw = (p.get("UserData") or {}).get("Value") if "UserData" in p else value
            data = raw if isinstance(raw, bytes) else (raw or "").encode()
            if len(data) > USER_DATA_LIMIT:
                raise exc.InvalidParameterValue(f"User data is limited to {USER_DATA_LIMIT} bytes")
            _require_stopped(inst)
            inst.user_data = data or None
        flag = p.get("DisableApiTermination")
        if flag is not None or attribute == "disableApiTermination":
            inst.disable_api_termination = (flag or {}).get("Value", False) if flag is not None \
                else str(value).lower() == "true"
        check = p.get("SourceDestCheck")
        if check is not None or attribute == "sourceDestCheck":
            primary = interfaces.primary_of(s, inst.instance_id)
            if primary is not None:  # enforced by the host (see "Network interfaces")
                primary.source_dest_check = bool((check or {}).get("Value", True)) \
                    if check is not None else str(value).lower() == "true"
        if p.get("Groups") or attribute == "groupSet":
            found = [sg.resolve_group(s, ctx.account_id, g, None) for g in p.get("Groups") or []]
            for group in found:
                if group.vpc_id != inst.vpc_id:
                    raise exc.InvalidParameter(
                        f"Security group {group.group_id} and instance {inst.instance_id} "
                        "belong to different networks.")
            groups = [g.group_id for g in found]
            if not groups:
                raise exc.MissingParameter("The request must contain the parameter Groups")
            if inst.state in ("shutting-down", "terminated"):
                raise exc.IncorrectInstanceState(
                    f"The instance '{inst.instance_id}' is not in a state from which its groups can be changed.")
            inst.security_group_ids = list(dict.fromkeys(groups))
            primary = interfaces.primary_of(s, inst.instance_id)
            if primary is not None:
                primary.security_group_ids = list(inst.security_group_ids)
    return {}
