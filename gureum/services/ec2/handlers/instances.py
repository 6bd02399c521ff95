"""RunInstances and the instance read APIs. Handlers write desired state and return;
the instance controller makes it real."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import func, select

from gureum.agent.network import mac_for
from gureum.api.dispatch import RequestContext, action
from gureum.hosts import placement, registry
from gureum.services.ec2 import (
    allocation,
    filters,
    ids,
    images,
    interfaces,
    ipv6,
    networks,
    volumes,
)
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import security_groups as sg
from gureum.services.ec2.handlers import common, launch_templates, network_interfaces
from gureum.services.ec2.handlers.metadata import validate_options
from gureum.services.ec2.instance_types import CATALOGUE, DEFAULT, fits
from gureum.services.ec2.views import (
    ROOT_DEVICE,
    metadata_options,
    private_dns,
    public_dns,
    state,
    volume_id,
)
from gureum.services.ec2.views import instance as instance_view
from gureum.store import models
from gureum.store.ebs_models import Snapshot
from gureum.store.host_models import Host, PlacementGroup

USER_DATA_LIMIT = 16 * 1024
ROOT_DEVICES = {"/dev/xvda", "/dev/sda1", "/dev/sda"}


def _request_hash(p: dict[str, Any]) -> str:
    body = {k: v for k, v in p.items() if k != "ClientToken"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _data_mappings(p: dict[str, Any]) -> tuple[list[dict[str, Any]], set[str]]:
    """The BlockDeviceMappings entries that ask for data volumes (EBS, not the root), and
    the devices suppressed with NoDevice (an image's volume left out)."""
    out, suppressed = [], set()
    for mapping in p.get("BlockDeviceMappings") or []:
        device = mapping.get("DeviceName") or ""
        if device in ROOT_DEVICES:
            continue
        if mapping.get("NoDevice") is not None:
            suppressed.add(device)
            continue
        if not mapping.get("Ebs"):
            continue  # instance store: t3s have none
        if not volumes.DATA_DEVICE.match(device):
            raise exc.InvalidBlockDeviceMapping(f"Invalid device name {device[:64]}")
        if mapping["Ebs"].get("Encrypted") or mapping["Ebs"].get("KmsKeyId"):
            raise exc.InvalidParameterValue("Encrypted volumes are not supported by gureum")
        out.append(mapping)
    if len({m["DeviceName"] for m in out}) != len(out):
        raise exc.InvalidBlockDeviceMapping("A device name is mapped twice")
    return out, suppressed


def _merged_mappings(image: models.Image, asked: list[dict[str, Any]],
                     suppressed: set[str]) -> list[dict[str, Any]]:
    """The image's data volumes, changed or left out by the request's entries, then the
    request's own. An image's snapshot is usable by whoever may launch the image."""
    merged: dict[str, dict[str, Any]] = {
        m["DeviceName"]: {"DeviceName": m["DeviceName"], "FromImage": True, "Ebs": {
            k: v for k, v in m.items() if k != "DeviceName" and v is not None}}
        for m in image.data_mappings or []}
    for mapping in asked:
        device = mapping["DeviceName"]
        base = merged.get(device, {"DeviceName": device, "Ebs": {}})
        merged[device] = {**base, "Ebs": {**base["Ebs"], **mapping["Ebs"]}}
    return [m for device, m in merged.items() if device not in suppressed]


def _data_volumes(s: Any, account: str, mappings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each data mapping's volume, checked as CreateVolume checks it."""
    planned = []
    for mapping in mappings:
        ebs = mapping["Ebs"]
        size = ebs.get("VolumeSize")
        if size is None and not ebs.get("SnapshotId"):
            raise exc.InvalidBlockDeviceMapping(
                f"The device {mapping['DeviceName']} needs a VolumeSize or a SnapshotId")
        if ebs.get("SnapshotId"):
            snap = s.get(Snapshot, ebs["SnapshotId"]) if mapping.get("FromImage") else \
                volumes.visible_snapshot(s, account, ebs["SnapshotId"])
            if snap is None or snap.state != "completed":
                raise exc.IncorrectState(f"Snapshot '{ebs['SnapshotId']}' is not 'completed'")
            size = size or snap.volume_size
            if size < snap.volume_size:
                raise exc.InvalidBlockDeviceMapping(
                    f"Volume of size {size}GB is smaller than snapshot '{snap.snapshot_id}', "
                    f"expect size >= {snap.volume_size}GB")
        volume_type = ebs.get("VolumeType") or "gp3"
        iops, throughput = volumes.checked_shape(volume_type, size, ebs.get("Iops"),
                                                 ebs.get("Throughput"))
        planned.append({"device": mapping["DeviceName"], "size_gib": size,
                        "volume_type": volume_type, "iops": iops, "throughput": throughput,
                        "snapshot_id": ebs.get("SnapshotId"),
                        "delete_on_termination": ebs.get("DeleteOnTermination", True)})
    return planned


def _root_mapping(p: dict[str, Any]) -> dict[str, Any]:
    """The Ebs part of the root device's BlockDeviceMappings entry ({} when absent)."""
    root: dict[str, Any] = {}
    for mapping in p.get("BlockDeviceMappings") or []:
        if not any(k in mapping for k in ("Ebs", "VirtualName", "NoDevice")):
            raise exc.MissingParameter("The request must contain the parameter ebs")
        ebs = mapping.get("Ebs") or {}
        if mapping.get("DeviceName") in ROOT_DEVICES:
            root = ebs
            size = ebs.get("VolumeSize")
            if size is not None and not 1 <= size <= 16384:
                raise exc.InvalidParameterValue(
                    f"Volume of {size}GiB is not between 1 and 16384 GiB")
            if ebs.get("VolumeType", "gp3") not in volumes.TYPES:
                raise exc.InvalidParameterValue(
                    f"Value ({ebs['VolumeType'][:32]}) for parameter volumeType is invalid")
    return root


def _user_data(p: dict[str, Any]) -> bytes | None:
    raw = p.get("UserData")
    if raw is None:
        return None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise exc.InvalidParameterValue("Invalid BASE64 encoding of user data.") from None
    if len(data) > USER_DATA_LIMIT:
        raise exc.InvalidParameterValue(f"User data is limited to {USER_DATA_LIMIT} bytes")
    return data


def _instance_tags(p: dict[str, Any]) -> list[tuple[str, str]]:
    tags: list[dict[str, Any]] = []
    for spec in p.get("TagSpecifications") or []:
        rtype = spec.get("ResourceType")
        if rtype not in ("instance", "volume", "network-interface"):
            raise exc.InvalidParameterValue(
                f"'{rtype}' is not a valid taggable resource type for this operation.")
        if rtype == "instance":
            tags.extend(spec.get("Tags") or [])
    return common.validate_tags(tags)


def check_capacity(cloud: Any, instance_type: str) -> None:
    """A type no host can hold is a capacity error, as AWS answers for a zone that
    has none of it, not an invalid parameter."""
    config = cloud.config
    if not fits(CATALOGUE[instance_type], config.host_vcpus, config.host_memory_mib,
                config.cpu_overcommit, config.memory_overcommit) and not _joined_host_fits(
                    cloud, instance_type):
        t = CATALOGUE[instance_type]
        raise exc.InsufficientInstanceCapacity(
            f"We currently do not have sufficient {instance_type} capacity: it needs "
            f"{t.vcpus} vCPUs and {t.memory_mib} MiB; this host offers "
            f"{config.host_vcpus * config.cpu_overcommit:g} vCPUs and "
            f"{config.host_memory_mib * config.memory_overcommit:g} MiB per instance.")


def _joined_host_fits(cloud: Any, instance_type: str) -> bool:
    """Whether a host other than this one (a bigger joined host) could hold the type."""
    with cloud.store.read() as s:
        return placement.any_host_fits(s, cloud.config, instance_type, joined_only=True)


def _placement_group(s: Any, account: str, given: dict[str, Any]) -> PlacementGroup | None:
    name, group_id = given.get("GroupName"), given.get("GroupId")
    if not (name or group_id):
        return None
    query = select(PlacementGroup).where(PlacementGroup.account_id == account)
    group = s.scalar(query.where(PlacementGroup.group_id == group_id) if group_id
                     else query.where(PlacementGroup.name == name))
    if group is None or (name and group.name != name):
        raise exc.InvalidPlacementGroupUnknown(
            f"The Placement Group '{name or group_id}' is unknown.")
    return group


def _hosts_for(ctx: RequestContext, s: Any, zone: str, instance_type: str, min_count: int,
               count: int, group: PlacementGroup | None) -> list[str | None]:
    """Where each instance runs (hosts/placement.py). A store without hosts (nothing
    registered them) keeps the one-host behaviour: the control host."""
    if s.scalar(select(Host.host_id).limit(1)) is None:
        return [None] * count
    return list(placement.place(s, ctx.cloud.config, ctx.cloud.control_host_id, zone,
                                instance_type, min_count, count, group, ctx.spread_group))


@action("ec2", "RunInstances")
def run_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    cloud, account = ctx.cloud, ctx.account_id
    request_hash = _request_hash(p)  # what the caller sent, not what a template added
    p = launch_templates.resolve(ctx, p)
    min_count, max_count = p["MinCount"], p["MaxCount"]
    if min_count < 1 or max_count < 1:
        raise exc.InvalidParameterValue("MinCount and MaxCount must be greater than zero")
    if min_count > max_count:
        raise exc.InvalidParameterValue("MinCount must be less than or equal to MaxCount")
    image_id = p.get("ImageId")
    if not image_id:
        raise exc.MissingParameter("The request must contain the parameter ImageId")
    ids.check_image_id(image_id)
    instance_type = p.get("InstanceType", DEFAULT)
    if instance_type not in CATALOGUE:
        raise exc.InvalidParameterValue(f"Invalid value '{instance_type}' for InstanceType.")
    check_capacity(cloud, instance_type)
    nic_specs = p.get("NetworkInterfaces") or []
    if nic_specs and (p.get("SecurityGroupIds") or p.get("SecurityGroups") or p.get("SubnetId")):
        raise exc.InvalidParameterCombination(
            "Network interfaces and an instance-level subnet ID or security groups may not be "
            "specified on the same request")
    top_ipv6 = {k: p[k] for k in ("Ipv6AddressCount", "Ipv6Addresses") if p.get(k) is not None}
    if top_ipv6 and nic_specs:
        raise exc.InvalidParameterCombination(
            "Network interfaces and an instance-level IPv6 addresses or count may not be "
            "specified on the same request")
    if p.get("EnablePrimaryIpv6"):
        raise exc.UnsupportedOperation("Primary IPv6 addresses are not supported")
    primary, extras = network_interfaces.launch_specs(
        nic_specs or ([top_ipv6 | {"DeviceIndex": 0}] if top_ipv6 else []), max_count,
        instance_type)
    subnet_id = p.get("SubnetId") or primary.get("SubnetId")
    root_mapping = _root_mapping(p)
    data_mappings, suppressed = _data_mappings(p)
    user_data = _user_data(p)
    tags = _instance_tags(p)
    token = p.get("ClientToken")
    if token is not None and len(token) > 64:
        raise exc.InvalidParameterValue("ClientToken must be at most 64 characters")
    metadata_options = validate_options(p.get("MetadataOptions"))
    zone = (p.get("Placement") or {}).get("AvailabilityZone")
    if zone and zone not in cloud.zones():
        raise exc.InvalidParameterValue(f"Invalid availability zone: [{zone}]")

    cloud.ensure_default_network(account)
    with cloud.store.write() as s:
        if token:
            existing = s.scalar(select(models.Reservation).where(
                models.Reservation.account_id == account, models.Reservation.client_token == token))
            if existing is not None:
                if existing.request_hash != request_hash:
                    raise exc.IdempotentParameterMismatch(
                        "Arguments on this idempotent request are inconsistent with arguments "
                        "used in previous request(s).")
                return _reservation(ctx, s, existing.reservation_id)
        image = images.launchable(s.get(models.Image, image_id), account, image_id)
        data_volumes = _data_volumes(s, account, _merged_mappings(image, data_mappings, suppressed))
        volume_gib = root_mapping.get("VolumeSize") or image.root_size_gib
        # An account's image holds a disk of its size; the built-in ones fit in 1 GiB.
        if image.account_id is not None and volume_gib < image.root_size_gib:
            raise exc.InvalidBlockDeviceMapping(
                f"Volume of size {volume_gib}GB is smaller than snapshot of image "
                f"'{image_id}', expect size >= {image.root_size_gib}GB")
        volumes.checked_shape(root_mapping.get("VolumeType", "gp3"), volume_gib,
                              root_mapping.get("Iops"), root_mapping.get("Throughput"))
        existing = network_interfaces.existing_for_launch(ctx, s, primary["NetworkInterfaceId"]) \
            if primary.get("NetworkInterfaceId") else None
        if existing is not None:  # the instance's subnet, address and groups are its
            subnet_id = existing.subnet_id
        subnet = s.get(models.Subnet, subnet_id or cloud.default_subnet_id(account))
        if subnet is None or subnet.account_id != account:
            raise exc.InvalidSubnetIDNotFound(f"The subnet ID '{subnet_id}' does not exist")
        if zone and zone != subnet.availability_zone:
            raise exc.InvalidParameterValue(
                f"The subnet {subnet.subnet_id} is in {subnet.availability_zone}, not {zone}")
        found = [sg.resolve_group(s, account, gid, None)
                 for gid in (p.get("SecurityGroupIds") or primary.get("Groups") or [])]
        found += [sg.resolve_group(s, account, None, name) for name in p.get("SecurityGroups") or []]
        for group in found:
            if group.vpc_id != subnet.vpc_id:
                raise exc.InvalidParameter(
                    f"Security group {group.group_id} and subnet {subnet.subnet_id} belong to "
                    "different networks.")
        vpc = s.get(models.Vpc, subnet.vpc_id)
        assert vpc is not None
        groups = list(dict.fromkeys(g.group_id for g in found)) or [
            networks.default_group_id(account, vpc.vpc_id, vpc.is_default)]
        if existing is not None:
            groups = list(existing.security_group_ids)
        key = None
        if p.get("KeyName"):
            key = s.scalar(select(models.KeyPair).where(models.KeyPair.account_id == account,
                                                        models.KeyPair.name == p["KeyName"]))
            if key is None:
                raise exc.InvalidKeyPairNotFound(f"The key pair '{p['KeyName']}' does not exist")
        live = s.scalar(select(func.count()).select_from(models.Instance).where(
            models.Instance.account_id == account, models.Instance.state != "terminated")) or 0
        room = cloud.config.max_instances_per_account - live
        if room < min_count:
            raise exc.InstanceLimitExceeded(
                f"You have requested more instances ({min_count}) than your current instance "
                f"limit of {cloud.config.max_instances_per_account} allows.")
        count = min(max_count, room)
        group = _placement_group(s, account, p.get("Placement") or {})
        hosts = _hosts_for(ctx, s, subnet.availability_zone, instance_type, min_count, count,
                           group)
        count = len(hosts)
        # The account's storage quota counts what the whole launch makes: every instance's
        # root volume and data volumes (live root volumes count as used already).
        volumes.check_quota(s, account, count * (volume_gib + sum(
            v["size_gib"] for v in data_volumes)), cloud.config.volume_quota_gib)
        wants_public = primary.get("AssociatePublicIpAddress", subnet.map_public_ip_on_launch)
        # Slots are per host (its ports and uid ranges): 16k instances per host, not per cloud.
        slots_on: dict[str | None, Any] = {}
        private_ips = allocation.free_private_ips(s, subnet.vpc_id, subnet.cidr)
        public_ips = allocation.free_public_ips(s, cloud.config.public_pool)
        reservation = models.Reservation(reservation_id=ids.new("r"), account_id=account,
                                         client_token=token, request_hash=request_hash)
        s.add(reservation)
        s.flush()
        # Addresses asked for (or drawn for secondaries) are taken as each instance is
        # made: draw each primary address afresh then.
        drawn_afresh = bool(extras) or bool(primary.get("PrivateIpAddresses")) or \
            bool(primary.get("SecondaryPrivateIpAddressCount"))
        for index in range(count):
            try:
                host_id = hosts[index]
                if host_id not in slots_on:
                    slots_on[host_id] = allocation.free_slots(
                        s, host_id, host_id is None or host_id == cloud.control_host_id)
                slot = next(slots_on[host_id])
                if existing is not None:
                    private_ip = existing.private_ip
                elif primary.get("PrivateIpAddress") or drawn_afresh:
                    s.flush()
                    private_ip = network_interfaces.claim_primary(s, subnet, primary)
                else:
                    private_ip = next(private_ips)
                public_ip = next(public_ips) if wants_public else None
            except StopIteration:
                if index >= min_count:
                    break
                raise exc.InsufficientInstanceCapacity(
                    "There is not enough free capacity (addresses) for the requested "
                    "instances.") from None
            inst = models.Instance(
                instance_id=ids.new("i"), account_id=account,
                reservation_id=reservation.reservation_id, ami_launch_index=index,
                image_id=image_id, instance_type=instance_type,
                key_name=key.name if key else None, authorized_key=key.public_key if key else None,
                state="pending", desired_state="running", slot=slot, private_ip=private_ip,
                public_ip=public_ip, vpc_id=subnet.vpc_id, subnet_id=subnet.subnet_id,
                availability_zone=subnet.availability_zone, security_group_ids=groups,
                volume_gib=volume_gib, user_data=user_data, client_token=token,
                metadata_options=metadata_options or None, assign_public_ip=wants_public,
                host_id=hosts[index], placement_group_id=group.group_id if group else None,
            )
            s.add(inst)
            s.flush()
            if existing is not None:
                network_interfaces.attach(s, existing, inst, 0,
                                          primary.get("DeleteOnTermination", False),
                                          primary=True)
            else:
                eni = interfaces.primary_for(inst, primary.get("Description") or "")
                eni.delete_on_termination = primary.get("DeleteOnTermination", True)
                s.add(eni)
                s.flush()
                network_interfaces.add_secondaries(s, subnet, eni, primary)
                ipv6.assign_new(s, subnet, eni, primary,
                                network_interfaces.address_limit(s, eni))
            network_interfaces.launch_extras(ctx, s, inst, extras)
            s.add(volumes.root_volume(inst, volume_gib,
                                      root_mapping.get("DeleteOnTermination", True),
                                      root_mapping.get("VolumeType", "gp3"),
                                      root_mapping.get("Iops"),
                                      root_mapping.get("Throughput")))
            for planned in data_volumes:  # made by the EBS controller before the first boot
                s.add(volumes.launch_volume(inst, **planned))
            common.put_tags(s, account, inst.instance_id, tags)
        result = _reservation(ctx, s, reservation.reservation_id)
    return result


def _reservation(ctx: RequestContext, s: Any, reservation_id: str) -> dict[str, Any]:
    instances = list(s.scalars(select(models.Instance).where(
        models.Instance.reservation_id == reservation_id).order_by(models.Instance.ami_launch_index)))
    tags = common.tags_of(s, ctx.account_id, [i.instance_id for i in instances])
    region = ctx.cloud.config.region
    names = common.group_names(s, ctx.account_id)
    hostless = common.vpcs_without_hostnames(s, ctx.account_id)
    devices = block_devices(s, instances)
    nics = interface_views(s, instances, region, names, hostless)
    return {
        "ReservationId": reservation_id, "OwnerId": ctx.account_id,
        "Groups": [],
        "Instances": [instance_view(i, tags[i.instance_id], region, names,
                                    i.vpc_id not in hostless, devices[i.instance_id],
                                    nics[i.instance_id]) for i in instances],
    }


def interface_views(s: Any, instances: list[models.Instance], region: str,
                    names: dict[str, str], hostless: set[str]) -> dict[str, list[dict[str, Any]] | None]:
    """Each instance's NetworkInterfaces from its interface rows (None: it has none, an
    instance terminated before they existed)."""
    attached = interfaces.of_instances(s, [i.instance_id for i in instances])
    public = interfaces.public_addresses(s, [e for enis in attached.values() for e in enis])
    return {i.instance_id: [interfaces.view(e, region, names, public, i.vpc_id not in hostless,
                                            for_instance=True)
                            for e in attached[i.instance_id]] or None for i in instances}


def block_devices(s: Any, instances: list[models.Instance]) -> dict[str, list[dict[str, Any]]]:
    """Each instance's BlockDeviceMappings from its volumes (root disk only for an
    instance made before EBS kept volume rows)."""
    rows = volumes.of_instances(s, [i.instance_id for i in instances])
    return {i.instance_id: volumes.mappings(i, rows[i.instance_id] or None) for i in instances}


def _filter_fields(inst: models.Instance, region: str, names: dict[str, str],
                   enis: list[models.NetworkInterface] | None = None) -> dict[str, Any]:
    """What each DescribeInstances filter sees of an instance: the values its view
    reports (other documented filters match nothing: attributes these instances lack).
    `enis`: its attached interfaces; `network-interface.*` filters see each of them."""
    eni = ids.derived("eni", inst.instance_id)
    private_name = private_dns(inst.private_ip, region)
    public_name = public_dns(inst.public_ip, region) or None
    group_names = [names.get(g, "") for g in inst.security_group_ids]
    launched = inst.launch_time.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "instance-id": inst.instance_id, "instance-state-name": inst.state,
        "instance-state-code": state(inst.state)["Code"], "instance-type": inst.instance_type,
        "image-id": inst.image_id, "key-name": inst.key_name, "private-ip-address": inst.private_ip,
        "ip-address": inst.public_ip, "availability-zone": inst.availability_zone,
        "vpc-id": inst.vpc_id, "subnet-id": inst.subnet_id, "reservation-id": inst.reservation_id,
        "private-dns-name": private_name, "dns-name": public_name, "owner-id": inst.account_id,
        "instance.group-id": inst.security_group_ids, "instance.group-name": group_names,
        "architecture": "x86_64", "launch-index": inst.ami_launch_index,
        "client-token": inst.client_token, "launch-time": launched,
        "root-device-type": "ebs", "root-device-name": ROOT_DEVICE, "virtualization-type": "hvm",
        "hypervisor": "xen", "tenancy": "default", "monitoring-state": "disabled",
        "platform-details": "Linux/UNIX", "usage-operation": "RunInstances",
        "source-dest-check": True, "ebs-optimized": False, "ena-support": True,
        "boot-mode": "uefi-preferred", "current-instance-boot-mode": "legacy-bios",
        "reason": inst.state_transition_reason or None,
        "state-reason-code": inst.state_reason_code, "state-reason-message":
            inst.state_reason_message or inst.state_reason_code,
        "metadata-options.http-tokens": metadata_options(inst)["HttpTokens"],
        "metadata-options.http-endpoint": metadata_options(inst)["HttpEndpoint"],
        "metadata-options.http-put-response-hop-limit":
            metadata_options(inst)["HttpPutResponseHopLimit"],
        "metadata-options.instance-metadata-tags": metadata_options(inst)["InstanceMetadataTags"],
        "block-device-mapping.device-name": ROOT_DEVICE,
        "block-device-mapping.volume-id": volume_id(inst.instance_id),
        "block-device-mapping.status": "attached",
        "block-device-mapping.delete-on-termination": True,
        "block-device-mapping.attach-time": launched,
        "network-interface.network-interface-id": eni,
        "network-interface.addresses.private-ip-address": inst.private_ip,
        "network-interface.addresses.primary": True,
        "network-interface.private-ip-address": inst.private_ip,
        "network-interface.private-dns-name": private_name,
        "network-interface.addresses.association.public-ip": inst.public_ip,
        "network-interface.association.public-ip": inst.public_ip,
        "network-interface.subnet-id": inst.subnet_id, "network-interface.vpc-id": inst.vpc_id,
        "network-interface.owner-id": inst.account_id,
        "network-interface.group-id": inst.security_group_ids,
        "network-interface.group-name": group_names,
        "network-interface.attachment.device-index": 0,
        "network-interface.attachment.status": "attached",
        "network-interface.attachment.instance-id": inst.instance_id,
        "network-interface.status": "in-use", "network-interface.source-dest-check": True,
        "network-interface.mac-address": mac_for(inst.private_ip),
    } | (_interface_fields(enis, names) if enis else {})


def _interface_fields(enis: list[models.NetworkInterface], names: dict[str, str]
                      ) -> dict[str, Any]:
    """The `network-interface.*` filter values of every attached interface."""
    groups = [g for e in enis for g in e.security_group_ids]
    return {
        "network-interface.network-interface-id": [e.eni_id for e in enis],
        "network-interface.addresses.private-ip-address": [a for e in enis for a in e.addresses()],
        "network-interface.private-ip-address": [e.private_ip for e in enis],
        "network-interface.subnet-id": [e.subnet_id for e in enis],
        "network-interface.group-id": groups,
        "network-interface.group-name": [names.get(g, "") for g in groups],
        "network-interface.attachment.device-index": [e.device_index for e in enis],
        "network-interface.attachment.attachment-id": [e.attachment_id for e in enis],
        "network-interface.description": [e.description for e in enis],
        "network-interface.source-dest-check": [e.source_dest_check for e in enis],
        "network-interface.mac-address": [e.mac_address for e in enis],
        "network-interface.ipv6-addresses.ipv6-address": [
            a for e in enis for a in e.ipv6_addresses or []],
        "network-interface.ipv6-address": [a for e in enis for a in e.ipv6_addresses or []],
        "ipv6-address": [a for e in enis if e.device_index == 0
                         for a in e.ipv6_addresses or []],
    }

def _select(ctx: RequestContext, p: dict[str, Any]) -> tuple[list[models.Instance], dict, dict,
                                                              set[str], dict, dict]:
    instance_ids = p.get("InstanceIds") or []
    if instance_ids and p.get("MaxResults") is not None:
        raise exc.InvalidParameterCombination(
            "The parameter instancesSet cannot be used with the parameter maxResults")
    flt = filters.validate(p.get("Filters"), set())  # every documented name; see above
    region = ctx.cloud.config.region
    with ctx.cloud.store.read() as s:
        if instance_ids:
            rows = common.instances_by_id(s, ctx.account_id, instance_ids)
        else:
            rows = list(s.scalars(select(models.Instance).where(
                models.Instance.account_id == ctx.account_id).order_by(
                    models.Instance.launch_time, models.Instance.reservation_id,
                    models.Instance.ami_launch_index)))
        tags = common.all_tags(s, ctx.account_id, "instance")
        names = common.group_names(s, ctx.account_id)
        hostless = common.vpcs_without_hostnames(s, ctx.account_id)
        if flt:  # the filter fields cost more than the rest of a large answer's rows
            attached = interfaces.of_instances(s, [i.instance_id for i in rows]) if any(
                name.startswith("network-interface.") or name == "ipv6-address"
                for name, _ in flt) else {}
            rows = [i for i in rows if filters.match(flt, _filter_fields(
                i, region, names, attached.get(i.instance_id)), tags[i.instance_id])]
        devices = block_devices(s, rows)
        nics = interface_views(s, rows, region, names, hostless)
    return rows, tags, names, hostless, devices, nics


@action("ec2", "DescribeInstances")
def describe_instances(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    rows, tags, names, hostless, devices, nics = _select(ctx, p)
    chunk, token = common.page(rows, p.get("MaxResults"), p.get("NextToken"))
    region = ctx.cloud.config.region
    reservations: dict[str, dict[str, Any]] = {}
    for inst in chunk:
        res = reservations.setdefault(inst.reservation_id, {
            "ReservationId": inst.reservation_id, "OwnerId": inst.account_id, "Groups": [],
            "Instances": []})
        res["Instances"].append(instance_view(inst, tags[inst.instance_id], region, names,
                                              inst.vpc_id not in hostless,
                                              devices[inst.instance_id], nics[inst.instance_id]))
    return {"Reservations": list(reservations.values()), "NextToken": token}


def _status(inst: models.Instance) -> tuple[str, str | None]:
    """(status, reachability) as EC2 reports them: impaired once the host failed the
    instance's pending work repeatedly (the controller keeps trying)."""
    if inst.attempts >= models.IMPAIRED_AFTER:
        return "impaired", "failed"
    if inst.state == "running":
        return "ok", "passed"
    return "not-applicable", None


def _checks(inst: models.Instance, lost: dict[str, dt.datetime]) -> tuple[dict, dict]:
    """(instance status, system status). On a lost host the system check fails from its
    last heartbeat, and the instance's own check cannot be made (EC2's answer when the
    hardware under an instance fails)."""
    since = lost.get(inst.host_id or "") if inst.state == "running" else None
    if since is not None:
        return ({"Status": "insufficient-data",
                 "Details": [{"Name": "reachability", "Status": "insufficient-data"}]},
                {"Status": "impaired", "Details": [{"Name": "reachability", "Status": "failed",
                                                    "ImpairedSince": since}]})
    status, reach = _status(inst)
    details = [{"Name": "reachability", "Status": reach}] if reach else []
    return {"Status": status, "Details": details}, {"Status": status, "Details": details}


def _reach(check: dict) -> str | None:
    return check["Details"][0]["Status"] if check["Details"] else None


@action("ec2", "DescribeInstanceStatus")
def describe_instance_status(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    include_all = p.get("IncludeAllInstances", False)
    flt = filters.validate(p.get("Filters"), {
        "availability-zone", "instance-state-name", "instance-state-code",
        "instance-status.status", "system-status.status", "instance-status.reachability",
        "system-status.reachability"})
    rows, _, _, _, _, _ = _select(ctx, {k: v for k, v in p.items() if k in ("InstanceIds",)})
    with ctx.cloud.store.read() as s:
        lost = registry.lost_since(s)
    out = []
    for inst in rows:
        if not include_all and inst.state != "running" and inst.attempts < models.IMPAIRED_AFTER:
            continue
        instance_status, system_status = _checks(inst, lost)
        fields = {"availability-zone": inst.availability_zone, "instance-state-name": inst.state,
                  "instance-state-code": state(inst.state)["Code"],
                  "instance-status.status": instance_status["Status"],
                  "system-status.status": system_status["Status"],
                  "instance-status.reachability": _reach(instance_status),
                  "system-status.reachability": _reach(system_status)}
        if not filters.match(flt, fields, {}):
            continue
        out.append({
            "InstanceId": inst.instance_id, "AvailabilityZone": inst.availability_zone,
            "InstanceState": state(inst.state),
            "InstanceStatus": instance_status, "SystemStatus": system_status,
        })
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"))
    return {"InstanceStatuses": chunk, "NextToken": token}
