"""What an instance reads from 169.254.169.254, in EC2's exact formats."""

from __future__ import annotations

import json
from typing import Any

from gureum.agent.metadata import InstanceMetadata, MetadataAnswer
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
         subnet_cidr: str) -> Tree:
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
        "vpc-ipv4-cidr-blocks": vpc_cidr,
    }
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
        "network": {"interfaces": {"macs": {mac: interface}}},
        "placement": {"availability-zone": inst.availability_zone,
                      "availability-zone-id": f"{region}-az1", "region": region},
        "profile": "default-hvm",
        "reservation-id": inst.reservation_id,
        "security-groups": groups,
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
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


def _listing(node: Tree) -> str:
    return "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items())


def resolve(path: str, inst: models.Instance, meta: Tree, region: str,
            signer: IdentitySigner) -> MetadataAnswer:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return MetadataAnswer(200, b"1.0\n2007-01-19\n2021-03-23\nlatest")
    if parts[0] not in ("latest", "2021-03-23", "2007-01-19", "1.0"):
        return MetadataAnswer(404, b"Not Found")
    rest = parts[1:]
    if not rest:
        return MetadataAnswer(200, b"dynamic\nmeta-data\nuser-data")
    if rest[0] == "user-data" and len(rest) == 1:
        if not inst.user_data:
            return MetadataAnswer(404, b"Not Found")
        return MetadataAnswer(200, inst.user_data, "application/octet-stream")
    if rest[0] == "dynamic":
        return _dynamic(rest[1:], inst, region, signer)
    if rest[0] != "meta-data":
        return MetadataAnswer(404, b"Not Found")
    if rest[1:] == ["public-keys"] and "public-keys" in meta:  # EC2 lists INDEX=NAME here
        return MetadataAnswer(200, "\n".join(f"{k}={inst.key_name}" for k in meta["public-keys"]).encode())
    node: Any = meta
    for part in rest[1:]:
        if not isinstance(node, dict) or part not in node:
            return MetadataAnswer(404, b"Not Found")
        node = node[part]
    if isinstance(node, dict):
        return MetadataAnswer(200, _listing(node).encode())
    return MetadataAnswer(200, str(node).encode())


def _dynamic(rest: list[str], inst: models.Instance, region: str,
             signer: IdentitySigner) -> MetadataAnswer:
    if not rest:
        return MetadataAnswer(200, b"instance-identity/")
    if rest[0] != "instance-identity":
        return MetadataAnswer(404, b"Not Found")
    if len(rest) == 1:
        return MetadataAnswer(200, b"document\npkcs7\nrsa2048\nsignature")
    document = identity_document(inst, region)
    if rest[1] == "document":
        return MetadataAnswer(200, document, "application/json")
    if rest[1] == "signature":
        return MetadataAnswer(200, signer.signature(document).encode())
    if rest[1] in ("pkcs7", "rsa2048"):
        return MetadataAnswer(200, signer.pkcs7(document).encode())
    return MetadataAnswer(404, b"Not Found")


def instance_metadata(inst: models.Instance, tags: dict[str, str], region: str, vpc_cidr: str,
                      subnet_cidr: str, signer: IdentitySigner) -> InstanceMetadata:
    opts = options_of(inst)
    meta = tree(inst, tags, region, vpc_cidr, subnet_cidr)
    return InstanceMetadata(
        instance_id=inst.instance_id, http_tokens=opts["HttpTokens"],
        hop_limit=int(opts["HttpPutResponseHopLimit"]),
        endpoint_enabled=opts["HttpEndpoint"] == "enabled",
        resolve=lambda path: resolve(path, inst, meta, region, signer))

