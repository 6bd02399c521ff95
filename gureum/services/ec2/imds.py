"""What an instance reads from 169.254.169.254, in EC2's exact formats: built here as data
(`contract.InstanceMetadata`) and served by the host's metadata service."""

from __future__ import annotations

import json
from typing import Any

from gureum.agent.contract import IdentityDocument, InstanceMetadata
from gureum.agent.network import mac_for
from gureum.services.ec2 import ids
from gureum.services.ec2.identity import IdentitySigner
from gureum.services.ec2.views import options_of, private_dns, public_dns
from gureum.store import models

Tree = dict[str, Any]


def identity_document(inst: models.Instance, region: str) -> bytes:
    doc = {
        "accountId": inst.account_id,
        "architecture": "x86_64",
        "availabilityZone": inst.availability_zone,
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": inst.image_id,
        "instanceId": inst.instance_id,
        "instanceType": inst.instance_type,
        "kernelId": None,
        "pendingTime": inst.launch_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "privateIp": inst.private_ip,
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }
    return json.dumps(doc, indent=2).encode()


def tree(inst: models.Instance, tags: dict[str, str], region: str, vpc_cidr: str,
         subnet_cidr: str, interfaces: list[models.NetworkInterface] | None = None,
         subnets: dict[str, str] | None = None) -> Tree:
    """`interfaces`: the instance's attached interface rows, each listed under
    network/interfaces/macs (the primary one alone when not given). `vpc_cidr`: the
    VPC's blocks, one a line, the primary first."""
    blocks, vpc_cidr = vpc_cidr, vpc_cidr.split("\n")[0]
    mac = mac_for(inst.private_ip)
    local_host = private_dns(inst.private_ip, region)
    public_host = public_dns(inst.public_ip, region)
    groups = "\n".join("default" for _ in inst.security_group_ids)
    interface: Tree = {
        "device-number": "0",
        "interface-id": ids.derived("eni", inst.instance_id),
        "local-hostname": local_host,
        "local-ipv4s": inst.private_ip,
        "mac": mac,
        "owner-id": inst.account_id,
        "security-group-ids": "\n".join(inst.security_group_ids),
        "security-groups": groups,
        "subnet-id": inst.subnet_id,
        "subnet-ipv4-cidr-block": subnet_cidr,
        "vpc-id": inst.vpc_id,
        "vpc-ipv4-cidr-block": vpc_cidr,
        "vpc-ipv4-cidr-blocks": blocks,
    }
    macs: Tree = {mac: interface}
    for eni in interfaces or []:
        if eni.device_index == 0:  # the primary: its own id and every address
            interface["interface-id"] = eni.eni_id
            interface["local-ipv4s"] = "\n".join(eni.addresses())
            if eni.ipv6_addresses:
                interface["ipv6s"] = "\n".join(eni.ipv6_addresses)
            continue
        macs[eni.mac_address] = {
            "device-number": str(eni.device_index), "interface-id": eni.eni_id,
            "local-hostname": private_dns(eni.private_ip, region),
            "local-ipv4s": "\n".join(eni.addresses()), "mac": eni.mac_address,
            "owner-id": eni.account_id,
            "security-group-ids": "\n".join(eni.security_group_ids),
            "security-groups": "\n".join("default" for _ in eni.security_group_ids),
            "subnet-id": eni.subnet_id,
            "subnet-ipv4-cidr-block": (subnets or {}).get(eni.subnet_id, ""),
            "vpc-id": eni.vpc_id, "vpc-ipv4-cidr-block": vpc_cidr,
            "vpc-ipv4-cidr-blocks": blocks}
        if eni.ipv6_addresses:
            macs[eni.mac_address]["ipv6s"] = "\n".join(eni.ipv6_addresses)  # type: ignore[index]
    meta: Tree = {
        "ami-id": inst.image_id,
        "ami-launch-index": str(inst.ami_launch_index),
        "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
        "hostname": local_host,
        "instance-action": "none",
        "instance-id": inst.instance_id,
        "instance-life-cycle": "on-demand",
        "instance-type": inst.instance_type,
        "local-hostname": local_host,
        "local-ipv4": inst.private_ip,
        "mac": mac,
        "network": {"interfaces": {"macs": macs}},
        "placement": {"availability-zone": inst.availability_zone,
                      "availability-zone-id": f"{region}-az1", "region": region},
        "profile": "default-hvm",
        "reservation-id": inst.reservation_id,
        "security-groups": groups,
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    if interface.get("ipv6s"):  # the primary interface's first IPv6 address
        meta["ipv6"] = str(interface["ipv6s"]).split("\n")[0]
    if inst.public_ip:
        meta["public-hostname"] = public_host
        meta["public-ipv4"] = inst.public_ip
        interface["public-hostname"] = public_host
        interface["public-ipv4s"] = inst.public_ip
    if inst.key_name and inst.authorized_key:
        meta["public-keys"] = {"0": {"openssh-key": inst.authorized_key.strip() + f" {inst.key_name}"}}
    if options_of(inst)["InstanceMetadataTags"] == "enabled":
        meta["tags"] = {"instance": dict(tags)}
    return meta


def instance_metadata(inst: models.Instance, tags: dict[str, str], region: str, vpc_cidr: str,
                      subnet_cidr: str, signer: IdentitySigner,
                      interfaces: list[models.NetworkInterface] | None = None,
                      subnets: dict[str, str] | None = None) -> InstanceMetadata:
    """Everything the host's metadata service answers this instance, as data."""
    opts = options_of(inst)
    document = identity_document(inst, region)
    signature, pkcs7 = signer.sign(document)
    return InstanceMetadata(
        instance_id=inst.instance_id, http_tokens=opts["HttpTokens"],
        hop_limit=int(opts["HttpPutResponseHopLimit"]),
        endpoint_enabled=opts["HttpEndpoint"] == "enabled",
        tree=tree(inst, tags, region, vpc_cidr, subnet_cidr, interfaces, subnets),
        identity=IdentityDocument(document.decode(), signature, pkcs7),
        user_data=inst.user_data or None,
        key_name=inst.key_name if inst.key_name and inst.authorized_key else None)
