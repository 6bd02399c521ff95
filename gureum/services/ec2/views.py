"""How EC2 resources look in API responses (dicts keyed by botocore member names)."""

from __future__ import annotations

from typing import Any

from gureum.agent.network import mac_for
from gureum.services.ec2 import ids
from gureum.services.ec2.instance_types import CATALOGUE
from gureum.store import models

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}
ROOT_DEVICE = "/dev/xvda"


def state(name: str) -> dict[str, Any]:
    return {"Code": STATE_CODES[name], "Name": name}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def private_dns(ip: str, region: str) -> str:
    return f"ip-{ip.replace('.', '-')}.{region}.compute.internal"


def public_dns(ip: str | None, region: str) -> str:
    return f"ec2-{ip.replace('.', '-')}.{region}.compute.gureum.internal" if ip else ""


# Instance metadata options where RunInstances set none (AWS defaults for AMIs without
# ImdsSupport).
DEFAULT_OPTIONS = {"HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                   "HttpEndpoint": "enabled", "InstanceMetadataTags": "disabled",
                   "HttpProtocolIpv6": "disabled"}


def options_of(inst: models.Instance) -> dict[str, Any]:
    return {**DEFAULT_OPTIONS, **(inst.metadata_options or {})}


def metadata_options(inst: models.Instance) -> dict[str, Any]:
    return {"State": "applied", **options_of(inst)}


def volume_id(instance_id: str) -> str:
    return ids.derived("vol", instance_id)


def instance(inst: models.Instance, tags: dict[str, str], region: str,
             group_names: dict[str, str] | None = None, dns_hostnames: bool = True,
             block_devices: list[dict[str, Any]] | None = None,
             interfaces: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`dns_hostnames`: the VPC's enableDnsHostnames; without it, as on AWS, no public DNS
    name. `block_devices`: its volumes (services/ec2/volumes.mappings); the root disk
    alone when not given."""
    itype = CATALOGUE.get(inst.instance_type)
    visible_net = inst.state != "terminated"
    groups = [{"GroupId": g, "GroupName": (group_names or {}).get(g, "default")}
              for g in inst.security_group_ids]
    out: dict[str, Any] = {
        "InstanceId": inst.instance_id,
        "ImageId": inst.image_id,
        "State": state(inst.state),
        "PrivateDnsName": private_dns(inst.private_ip, region) if visible_net else "",
        "PublicDnsName": public_dns(inst.public_ip, region) if dns_hostnames else "",
        "StateTransitionReason": inst.state_transition_reason,
        "AmiLaunchIndex": inst.ami_launch_index,
        "ProductCodes": [],
        "InstanceType": inst.instance_type,
        "LaunchTime": inst.launch_time,
        "Placement": {"AvailabilityZone": inst.availability_zone,
                      "GroupName": (group_names or {}).get(inst.placement_group_id or "", ""),
                      **({"GroupId": inst.placement_group_id} if inst.placement_group_id
                         else {}),
                      "Tenancy": "default"},
        "Monitoring": {"State": "disabled"},
        "Architecture": "x86_64",
        "RootDeviceType": "ebs",
        "RootDeviceName": ROOT_DEVICE,
        "VirtualizationType": "hvm",
        "Hypervisor": "xen",
        "ClientToken": inst.client_token or "",
        "EbsOptimized": False,
        "EnaSupport": True,
        # The primary interface's (ModifyInstanceAttribute changes that one, as on EC2).
        "SourceDestCheck": interfaces[0].get("SourceDestCheck", True) if interfaces else True,
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "Tags": tag_list(tags) if tags else None,
        "SecurityGroups": groups,
        "CpuOptions": {"CoreCount": itype.vcpus if itype else 1, "ThreadsPerCore": 1},
        "MetadataOptions": metadata_options(inst),
        "BootMode": "uefi-preferred",
        "CurrentInstanceBootMode": "legacy-bios",
    }
    if inst.key_name:
        out["KeyName"] = inst.key_name
    if inst.state_reason_code:
        out["StateReason"] = {"Code": inst.state_reason_code,
                              "Message": inst.state_reason_message or inst.state_reason_code}
    if visible_net:
        out.update({
            "SubnetId": inst.subnet_id,
            "VpcId": inst.vpc_id,
            "PrivateIpAddress": inst.private_ip,
            "BlockDeviceMappings": block_devices if block_devices is not None else [{
                "DeviceName": ROOT_DEVICE,
                "Ebs": {"VolumeId": volume_id(inst.instance_id), "Status": "attached",
                        "AttachTime": inst.launch_time, "DeleteOnTermination": True},
            }],
            "NetworkInterfaces": interfaces or [_interface(inst, groups, region, dns_hostnames)],
        })
    if inst.public_ip:
        out["PublicIpAddress"] = inst.public_ip
    primary_ipv6 = next((a["Ipv6Address"] for nic in interfaces or []
                         if (nic.get("Attachment") or {}).get("DeviceIndex") == 0
                         for a in nic.get("Ipv6Addresses") or []), None)
    if visible_net and primary_ipv6:
        out["Ipv6Address"] = primary_ipv6
    return out


def _interface(inst: models.Instance, groups: list[dict[str, str]], region: str,
               dns_hostnames: bool) -> dict[str, Any]:
    public_name = public_dns(inst.public_ip, region) if dns_hostnames else ""
    association = ({"PublicIp": inst.public_ip, "PublicDnsName": public_name,
                    "IpOwnerId": "amazon"} if inst.public_ip else None)
    return {
        "NetworkInterfaceId": ids.derived("eni", inst.instance_id),
        "SubnetId": inst.subnet_id,
        "VpcId": inst.vpc_id,
        "Description": "",
        "OwnerId": inst.account_id,
        "Status": "in-use",
        "MacAddress": mac_for(inst.private_ip),
        "PrivateIpAddress": inst.private_ip,
        "PrivateDnsName": private_dns(inst.private_ip, region),
        "SourceDestCheck": True,
        "InterfaceType": "interface",
        "Groups": groups,
        "Association": association,
        "Attachment": {"AttachmentId": ids.derived("eni-attach", inst.instance_id),
                       "DeviceIndex": 0, "Status": "attached", "AttachTime": inst.launch_time,
                       "DeleteOnTermination": True, "NetworkCardIndex": 0},
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": inst.private_ip,
                                "PrivateDnsName": private_dns(inst.private_ip, region),
                                "Association": association}],
    }
