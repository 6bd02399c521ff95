"""`gureum account delete`: remove everything an account owns, then the account.

Every removal is an API call signed as the account (the same handlers, checks and
controllers as the account's own calls), in dependency order: Auto Scaling groups before
their instances (or the group would replace them), instances before what they use, load
balancers before target groups and certificates, images before their snapshots, rules
before the security groups they name, subnets, route tables and gateways before their
VPC. Where a controller finishes the work (terminations, group and volume removal), the
next step waits for it. What the API keeps by design (the default VPC and its default
subnet, group, gateway and route table; terminated instances' rows; metric data) is
purged from the store last, with the access keys and the account row: its keys stop
working at once in this process, and within KEY_CACHE_SECONDS in a running server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from sqlalchemy import Table, delete, func, select

from gureum.admin.inventory import is_protected, resolve
from gureum.api.tls import client_verify
from gureum.cloud import Cloud
from gureum.errors import OperatorError
from gureum.store import models
from gureum.store.ebs_models import Snapshot, Volume

Say = Callable[[str], None]
WAIT_SECONDS = 300.0


class Teardown:
    """The account's resources removed through the API at `cloud.config.endpoint`."""

    def __init__(self, cloud: Cloud, account: models.Account, say: Say = lambda _: None,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self.cloud = cloud
        self.account_id = account.account_id
        self.say = say
        self.wait_seconds = wait_seconds
        key = cloud.credentials_of(account.account_id)
        if key is None:
            raise OperatorError(f"account {account.account_id} has no access key to act as")
        cfg = cloud.config
        self._client: Callable[[str], Any] = lambda service: boto3.client(
            service, endpoint_url=cfg.endpoint, region_name=cfg.region,
            verify=client_verify(cfg), aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            config=BotoConfig(retries={"max_attempts": 4, "mode": "standard"},
                              connect_timeout=5, read_timeout=60))
        self.ec2 = self._client("ec2")
        self.removed: list[str] = []

    # -- the order ---------------------------------------------------------------------
    def run(self) -> list[str]:
        try:
            self.ec2.describe_regions()
        except Exception as err:  # noqa: BLE001 - any failure means the same to the operator
            raise OperatorError(f"cannot reach the cloud at {self.cloud.config.endpoint}: "
                                f"{err} (is `gureum up` running?)") from err
        for step in (self.auto_scaling_groups, self.instances, self.load_balancers,
                     self.alarms, self.certificates, self.nat_gateways, self.addresses,
                     self.network_interfaces, self.volumes,
                     self.images, self.snapshots, self.launch_templates, self.key_pairs,
                     self.security_groups, self.networks):
            step()
        purge(self.cloud, self.account_id)
        self.removed.append(f"account {self.account_id}")
        return self.removed

    def _rows(self, model: type[Volume] | type[Snapshot]) -> int:
        """The account's rows of `model` in the store, in any state."""
        with self.cloud.store.read() as s:
            return s.scalar(select(func.count()).select_from(model).where(
                model.account_id == self.account_id)) or 0

    def _gone(self, what: str) -> None:
        self.removed.append(what)
        self.say(f"removed {what}")

    def _wait(self, what: str, done: Callable[[], bool]) -> None:
        self.say(f"waiting for {what}")
        deadline = time.monotonic() + self.wait_seconds
        while not done():
            if time.monotonic() > deadline:
                raise OperatorError(f"gave up waiting for {what} after {self.wait_seconds:.0f} s "
                                    "(run the command again to continue)")
            time.sleep(0.2)

    # -- the steps ---------------------------------------------------------------------
    def auto_scaling_groups(self) -> None:
        asg = self._client("autoscaling")

        def names() -> list[str]:
            return [g["AutoScalingGroupName"] for page in asg.get_paginator(
                "describe_auto_scaling_groups").paginate() for g in page["AutoScalingGroups"]]

        doomed = names()
        for name in doomed:
            asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
            self._gone(f"Auto Scaling group {name}")
        if doomed:
            self._wait("Auto Scaling groups to end their instances", lambda: not names())

    def _live_instances(self) -> list[dict[str, Any]]:
        return [i for page in self.ec2.get_paginator("describe_instances").paginate()
                for r in page["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"]

    def instances(self) -> None:
        live = self._live_instances()
        for inst in live:
            # Termination protection guards against mistakes, not against the operator.
            self.ec2.modify_instance_attribute(InstanceId=inst["InstanceId"],
                                               DisableApiTermination={"Value": False})
        ids = [i["InstanceId"] for i in live]
        for start in range(0, len(ids), 500):
            self.ec2.terminate_instances(InstanceIds=ids[start:start + 500])
        for iid in ids:
            self._gone(f"instance {iid}")
        if ids:
            self._wait(f"{len(ids)} instance(s) to terminate", lambda: not self._live_instances())

    def load_balancers(self) -> None:
        elb = self._client("elbv2")

        def arns() -> list[str]:
            return [lb["LoadBalancerArn"] for page in elb.get_paginator(
                "describe_load_balancers").paginate() for lb in page["LoadBalancers"]]

        doomed = arns()
        for arn in doomed:
            elb.delete_load_balancer(LoadBalancerArn=arn)
            self._gone(f"load balancer {arn.rsplit('/', 2)[-2]}")
        if doomed:
            self._wait("load balancers to go", lambda: not arns())
        for page in elb.get_paginator("describe_target_groups").paginate():
            for group in page["TargetGroups"]:
                elb.delete_target_group(TargetGroupArn=group["TargetGroupArn"])
                self._gone(f"target group {group['TargetGroupName']}")

    def alarms(self) -> None:
        cloudwatch = self._client("cloudwatch")
        names = [a["AlarmName"] for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmTypes=["MetricAlarm", "CompositeAlarm"]) for a in page.get("MetricAlarms", [])]
        for start in range(0, len(names), 100):
            cloudwatch.delete_alarms(AlarmNames=names[start:start + 100])
        for name in names:
            self._gone(f"alarm {name}")

    def certificates(self) -> None:
        acm = self._client("acm")
        for page in acm.get_paginator("list_certificates").paginate():
            for cert in page["CertificateSummaryList"]:
                acm.delete_certificate(CertificateArn=cert["CertificateArn"])
                self._gone(f"certificate {cert.get('DomainName', cert['CertificateArn'])}")

    def nat_gateways(self) -> None:
        """Before the addresses: a NAT gateway holds its Elastic IP until it is deleted."""
        def live() -> list[str]:
            return [n["NatGatewayId"] for n in self.ec2.describe_nat_gateways()["NatGateways"]
                    if n["State"] != "deleted"]

        for nat_id in live():
            self.ec2.delete_nat_gateway(NatGatewayId=nat_id)
            self._gone(f"NAT gateway {nat_id}")
        self._wait("NAT gateways to be deleted", lambda: not live())

    def addresses(self) -> None:
        for addr in self.ec2.describe_addresses()["Addresses"]:
            if addr.get("AssociationId"):
                self.ec2.disassociate_address(AssociationId=addr["AssociationId"])
            self.ec2.release_address(AllocationId=addr["AllocationId"])
            self._gone(f"Elastic IP {addr.get('PublicIp')}")

    def network_interfaces(self) -> None:
        """Those left once the instances ended: made by CreateNetworkInterface, or kept
        (DeleteOnTermination false); detached first if one is still attached."""
        for eni in self.ec2.describe_network_interfaces()["NetworkInterfaces"]:
            attachment = eni.get("Attachment") or {}
            if attachment.get("DeviceIndex", 0) > 0:
                self.ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"])
            elif attachment:
                continue  # an instance's primary one: it goes with the instance
            self.ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
            self._gone(f"network interface {eni['NetworkInterfaceId']}")

    def _volumes(self) -> list[dict[str, Any]]:
        return [v for page in self.ec2.get_paginator("describe_volumes").paginate()
                for v in page["Volumes"]]

    def volumes(self) -> None:
        for vol in self._volumes():
            if vol.get("Attachments"):
                self.ec2.detach_volume(VolumeId=vol["VolumeId"], Force=True)
        self._wait("volumes to detach", lambda: all(
            v["State"] in ("available", "deleting", "error") for v in self._volumes()))
        for vol in self._volumes():
            self.ec2.delete_volume(VolumeId=vol["VolumeId"])
            self._gone(f"volume {vol['VolumeId']}")
        # Rows, not DescribeVolumes (which hides `deleting`): the controller removes a
        # volume's file, then its row; purging the row first would leave the file.
        self._wait("volumes to be deleted", lambda: not self._rows(Volume))

    def images(self) -> None:
        for image in self.ec2.describe_images(Owners=["self"])["Images"]:
            self.ec2.deregister_image(ImageId=image["ImageId"])
            self._gone(f"image {image['ImageId']} ({image.get('Name', '')})")

    def snapshots(self) -> None:
        def owned() -> list[dict[str, Any]]:
            return [sn for page in self.ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"]) for sn in page["Snapshots"]]

        self._wait("snapshots to complete", lambda: all(
            sn["State"] != "pending" for sn in owned()))
        for snap in owned():
            self.ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])
            self._gone(f"snapshot {snap['SnapshotId']}")
        self._wait("snapshots to be deleted", lambda: not self._rows(Snapshot))

    def launch_templates(self) -> None:
        for page in self.ec2.get_paginator("describe_launch_templates").paginate():
            for template in page["LaunchTemplates"]:
                self.ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
                self._gone(f"launch template {template['LaunchTemplateName']}")

    def key_pairs(self) -> None:
        for pair in self.ec2.describe_key_pairs()["KeyPairs"]:
            self.ec2.delete_key_pair(KeyPairId=pair["KeyPairId"])
            self._gone(f"key pair {pair['KeyName']}")

    def security_groups(self) -> None:
        """Every rule first (a rule naming another group holds that group), then every
        group but the default ones (which go with their VPCs)."""
        groups = self.ec2.describe_security_groups()["SecurityGroups"]
        rules = [r for page in self.ec2.get_paginator("describe_security_group_rules").paginate()
                 for r in page["SecurityGroupRules"]]
        for group in groups:
            for egress in (False, True):
                ids = [r["SecurityGroupRuleId"] for r in rules
                       if r["GroupId"] == group["GroupId"] and r["IsEgress"] == egress]
                if ids:
                    revoke = (self.ec2.revoke_security_group_egress if egress
                              else self.ec2.revoke_security_group_ingress)
                    revoke(GroupId=group["GroupId"], SecurityGroupRuleIds=ids)
        for group in groups:
            if group["GroupName"] != "default":
                self.ec2.delete_security_group(GroupId=group["GroupId"])
                self._gone(f"security group {group['GroupId']} ({group['GroupName']})")

    def networks(self) -> None:
        """Each VPC the account made, with its subnets, route tables and gateways. The
        default VPC is kept by the API (it is remade on first use): purged with the rest."""
        for vpc in self.ec2.describe_vpcs()["Vpcs"]:
            if vpc.get("IsDefault"):
                continue
            only = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
            for subnet in self.ec2.describe_subnets(Filters=only)["Subnets"]:
                self.ec2.delete_subnet(SubnetId=subnet["SubnetId"])
            for table in self.ec2.describe_route_tables(Filters=only)["RouteTables"]:
                if any(a.get("Main") for a in table.get("Associations", [])):
                    continue  # the main table goes with its VPC
                for assoc in table.get("Associations", []):
                    self.ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
                self.ec2.delete_route_table(RouteTableId=table["RouteTableId"])
            for gateway in self.ec2.describe_internet_gateways(Filters=[
                    {"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["InternetGateways"]:
                self.ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"],
                                                 VpcId=vpc["VpcId"])
            self.ec2.delete_vpc(VpcId=vpc["VpcId"])
            self._gone(f"VPC {vpc['VpcId']}")
        for gateway in self.ec2.describe_internet_gateways()["InternetGateways"]:
            if not gateway.get("Attachments"):
                self.ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
                self._gone(f"internet gateway {gateway['InternetGatewayId']}")


def _child_rows(table: Table, account_id: str) -> Iterator[Any]:
    """DELETE statements for `table`'s rows that belong to the account: by its own
    account_id column, else through the foreign key to a parent that has one.
    Deregistered images stay (no foreign key holds them): the EBS controller removes
    their roots once no instance, of any account, runs from them, then their rows."""
    if table.name == "images":
        yield delete(table).where(table.c.account_id == account_id,
                                  table.c.state != "deregistered")
        return
    if "account_id" in table.c:
        yield delete(table).where(table.c.account_id == account_id)
        return
    for fk in table.foreign_keys:
        parent = fk.column.table
        if "account_id" in parent.c:
            yield delete(table).where(fk.parent.in_(
                select(fk.column).where(parent.c.account_id == account_id)))


def purge(cloud: Cloud, account_id: str) -> None:
    """Every row left of the account, children before parents (the tables' foreign-key
    order, reversed), then its keys and the account itself, in one transaction."""
    with cloud.store.write() as s:
        for table in reversed(models.Base.metadata.sorted_tables):
            if table.name == "accounts":
                continue
            for statement in _child_rows(table, account_id):
                s.execute(statement)
        s.execute(delete(models.Account).where(models.Account.account_id == account_id))
    cloud.forget_keys_of(account_id)


def delete_account(cloud: Cloud, ref: str, say: Say = lambda _: None,
                   wait_seconds: float = WAIT_SECONDS) -> list[str]:
    """Everything `ref` (an account id or name) owns, then the account; what was removed."""
    account = resolve(cloud, ref)
    if is_protected(account):
        raise OperatorError(f"account {account.account_id} ({account.name}) is the cloud "
                            "operator's own and cannot be deleted")
    return Teardown(cloud, account, say, wait_seconds).run()
