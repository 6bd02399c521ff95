"""The cloud side of an app, made through the AWS APIs like any user's resources:

  security group  gureum-apps-lb       port 80 from anywhere (shared by every app)
  load balancer   gureum-apps          internet-facing ALB, listener :80 (shared; its
                                       default action answers 404)
  listener rule   host-header APP.<region>.apps.gureum.internal -> the app's target group
  security group  gureum-app-APP       the app's port from the load balancer's group
  target group    gureum-app-APP       HTTP on the app's port, its health path
  launch template gureum-app-APP       one version per release (its image)
  Auto Scaling    gureum-app-APP       HealthCheckType ELB, attached to the target group
  images          gureum-app-APP-vN    one per release

Everything an app owns carries the tag gureum:app=APP; the shared ones gureum:shared=apps.
"""

from __future__ import annotations

import configparser
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from gureum.api.tls import client_verify
from gureum.config import Config
from gureum.deploy import DeployError
from gureum.services.elbv2.zones import APPS_ZONE

# The cloud's own CA, as ACM Private CA names it (services/acm/handlers/requests.py).
CLOUD_CA_ARN = "arn:aws:acm-pca:{region}:000000000001:certificate-authority/gureum"

APP_TAG = "gureum:app"
RELEASE_TAG = "gureum:release"
SHARED_TAG = "gureum:shared"
LB_NAME = "gureum-apps"
LB_GROUP = "gureum-apps-lb"
LISTENER_PORT = 80
HTTPS_PORT = 443


def app_host(app: str, region: str) -> str:
    return f"{app}.{region}.{APPS_ZONE}"


def names(app: str) -> str:
    return f"gureum-app-{app}"


def error_text(err: Exception) -> str:
    if isinstance(err, ClientError):
        e = err.response.get("Error", {})
        return f"{e.get('Code')}: {e.get('Message')}"
    return str(err)


def code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class Api:
    """botocore clients for the cloud's endpoint, as the account the `gureum` profile (or
    the default account of this data directory) names."""

    def __init__(self, cfg: Config, profile: str = "gureum") -> None:
        self.cfg = cfg
        self.region = cfg.region
        session = botocore.session.Session()
        access, secret = _profile_keys(profile)
        if access is None:
            access, secret = _store_keys(cfg)
        boto = BotoConfig(retries={"max_attempts": 4, "mode": "standard"},
                          connect_timeout=5, read_timeout=60)
        verify = client_verify(cfg)  # over HTTPS: the cloud's CA (or the operator's bundle)
        self._make: Callable[[str], BaseClient] = lambda service: session.create_client(
            service, region_name=cfg.region, endpoint_url=cfg.endpoint, verify=verify,
            aws_access_key_id=access, aws_secret_access_key=secret, config=boto)
        self._clients: dict[str, BaseClient] = {}
        try:
            self.account_id: str = self.client("sts").get_caller_identity()["Account"]
        except (ClientError, BotoCoreError) as err:
            raise DeployError(f"cannot reach the cloud at {cfg.endpoint}: "
                              f"{error_text(err)} (is `gureum up` running?)") from err

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._make(service)
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def elb(self) -> Any:
        return self.client("elbv2")

    @property
    def asg(self) -> Any:
        return self.client("autoscaling")

    @property
    def acm(self) -> Any:
        return self.client("acm")


def _profile_keys(profile: str) -> tuple[str | None, str | None]:
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", Path.home() / ".aws/credentials"))
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None, None
    if profile in parser and "aws_access_key_id" in parser[profile]:
        return parser[profile]["aws_access_key_id"], parser[profile].get("aws_secret_access_key")
    return None, None


def _store_keys(cfg: Config) -> tuple[str, str]:
    from gureum.cloud import Cloud

    if not cfg.database_url and not cfg.db_path.exists():
        raise DeployError(f"no cloud in {cfg.data_dir} (run `gureum up`, or pass --data-dir)")
    _account, access, secret = Cloud(cfg, with_agent=False).ensure_default_account()
    return access, secret


def tags(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def tag_map(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


@dataclass
class Shared:
    vpc_id: str
    subnet_id: str
    lb_group: str
    lb_arn: str
    lb_dns: str
    lb_address: str
    listener_arn: str
    https_listener_arn: str | None  # None when port 443 could not be had

    @property
    def listeners(self) -> list[str]:
        return [self.listener_arn, *([self.https_listener_arn] if self.https_listener_arn
                                     else [])]


def _default_network(api: Api) -> tuple[str, str]:
    vpcs = api.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise DeployError("the account has no default VPC")
    vpc = vpcs[0]["VpcId"]
    subnets = api.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    if not subnets:
        raise DeployError(f"the default VPC {vpc} has no subnet")
    return vpc, sorted(subnets, key=lambda s: s["SubnetId"])[0]["SubnetId"]


def _group(api: Api, name: str, vpc: str) -> str | None:
    found = api.ec2.describe_security_groups(Filters=[
        {"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}])
    return found["SecurityGroups"][0]["GroupId"] if found["SecurityGroups"] else None


def find_lb(api: Api) -> dict[str, Any] | None:
    try:
        return api.elb.describe_load_balancers(Names=[LB_NAME])["LoadBalancers"][0]
    except ClientError as err:
        if code(err) == "LoadBalancerNotFound":
            return None
        raise


def _lb_address(lb: dict[str, Any]) -> str:
    for zone in lb.get("AvailabilityZones", []):
        for addr in zone.get("LoadBalancerAddresses", []):
            return str(addr.get("IpAddress"))
    return ""


def _listener(api: Api, lb_arn: str, port: int = LISTENER_PORT) -> str | None:
    for listener in api.elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]:
        if listener["Port"] == port:
            return str(listener["ListenerArn"])
    return None


NOT_FOUND = {"Type": "fixed-response", "FixedResponseConfig": {
    "StatusCode": "404", "ContentType": "text/plain",
    "MessageBody": "no app answers to this host name\n"}}


def _certificates(api: Api, key: str, value: str) -> list[str]:
    """ACM certificates tagged key=value (those gureum deploy requested)."""
    found = []
    for summary in api.acm.list_certificates()["CertificateSummaryList"]:
        arn = summary["CertificateArn"]
        if tag_map(api.acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]).get(key) \
                == value:
            found.append(str(arn))
    return found


def _https_listener(api: Api, lb_arn: str, marker: dict[str, str]) -> str | None:
    """The shared HTTPS listener, its default certificate the cloud CA's wildcard for
    every app's own name; None (HTTP only) when the port cannot be had."""
    listener = _listener(api, lb_arn, HTTPS_PORT)
    if listener is not None:
        return listener
    wildcard = f"*.{api.region}.{APPS_ZONE}"
    held = _certificates(api, SHARED_TAG, "apps")
    cert = held[0] if held else api.acm.request_certificate(
        DomainName=wildcard, ValidationMethod="DNS", KeyAlgorithm="EC_prime256v1",
        Tags=tags(marker))["CertificateArn"]
    try:
        return str(api.elb.create_listener(
            LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=HTTPS_PORT,
            Certificates=[{"CertificateArn": cert}], DefaultActions=[NOT_FOUND],
            Tags=tags(marker))["Listeners"][0]["ListenerArn"])
    except ClientError as err:
        if code(err) != "InvalidConfigurationRequest":
            raise
        print(f"note: no HTTPS for apps: {error_text(err)}")
        return None


def ensure_shared(api: Api) -> Shared:
    """The one load balancer every app shares, made on the first deploy."""
    vpc, subnet = _default_network(api)
    marker = {SHARED_TAG: "apps"}
    lb_group = _group(api, LB_GROUP, vpc)
    if lb_group is None:
        lb_group = api.ec2.create_security_group(
            GroupName=LB_GROUP, Description="gureum deploy: the apps' load balancer", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags(marker)}])["GroupId"]
    opened = {perm.get("FromPort") for perm in api.ec2.describe_security_groups(
        GroupIds=[lb_group])["SecurityGroups"][0]["IpPermissions"]}
    missing = [port for port in (LISTENER_PORT, HTTPS_PORT) if port not in opened]
    if missing:
        api.ec2.authorize_security_group_ingress(GroupId=lb_group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for port in missing])
    lb = find_lb(api)
    if lb is None:
        lb = api.elb.create_load_balancer(
            Name=LB_NAME, Subnets=[subnet], SecurityGroups=[lb_group], Scheme="internet-facing",
            Type="application", Tags=tags(marker))["LoadBalancers"][0]
    elif not tag_map(api.elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])[
            "TagDescriptions"][0]["Tags"]).get(SHARED_TAG):
        raise DeployError(f"a load balancer named {LB_NAME} exists and was not made by "
                          "gureum deploy: rename or delete it")
    listener = _listener(api, lb["LoadBalancerArn"])
    if listener is None:
        try:
            listener = api.elb.create_listener(
                LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=LISTENER_PORT,
                DefaultActions=[NOT_FOUND], Tags=tags(marker))["Listeners"][0]["ListenerArn"]
        except ClientError as err:
            raise DeployError(f"the apps' load balancer cannot listen on port {LISTENER_PORT}: "
                              f"{error_text(err)}") from err
    https = _https_listener(api, lb["LoadBalancerArn"], marker)
    return Shared(vpc, subnet, lb_group, lb["LoadBalancerArn"], lb["DNSName"], _lb_address(lb),
                  str(listener), https)


def find_group(api: Api, app: str) -> dict[str, Any] | None:
    groups = api.asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[names(app)])["AutoScalingGroups"]
    return groups[0] if groups else None


def app_groups(api: Api) -> list[dict[str, Any]]:
    """Every Auto Scaling group gureum deploy made (tagged gureum:app)."""
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = api.asg.describe_auto_scaling_groups(**({"NextToken": token} if token else {}))
        out += [g for g in page["AutoScalingGroups"] if APP_TAG in tag_map(g.get("Tags"))]
        token = page.get("NextToken")
        if not token:
            return out


def releases(api: Api, app: str) -> list[dict[str, Any]]:
    """The app's release images, oldest first."""
    images = api.ec2.describe_images(Owners=["self"], Filters=[
        {"Name": f"tag:{APP_TAG}", "Values": [app]}])["Images"]
    return sorted(images, key=lambda i: release_number(tag_map(i.get("Tags")).get(RELEASE_TAG)))


def release_number(release: str | None) -> int:
    try:
        return int((release or "v0")[1:])
    except ValueError:
        return 0


def tag_release(api: Api, image_id: str, app: str, release: str) -> None:
    api.ec2.create_tags(Resources=[image_id], Tags=tags({APP_TAG: app, RELEASE_TAG: release}))


def _target_group(api: Api, app: str, port: int, health_path: str, vpc: str) -> str:
    try:
        found = api.elb.describe_target_groups(Names=[names(app)])["TargetGroups"]
    except ClientError as err:
        if code(err) != "TargetGroupNotFound":
            raise
        found = []
    if found:
        tg = found[0]
        if tg["Port"] != port or tg.get("HealthCheckPath") != health_path:
            # The port or health path changed: the target group follows (a new port takes
            # effect with the instances that register next).
            api.elb.modify_target_group(TargetGroupArn=tg["TargetGroupArn"],
                                        HealthCheckPath=health_path)
        return str(tg["TargetGroupArn"])
    arn = api.elb.create_target_group(
        Name=names(app), Protocol="HTTP", Port=port, VpcId=vpc, TargetType="instance",
        HealthCheckProtocol="HTTP", HealthCheckPath=health_path, HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200-399"}, Tags=tags({APP_TAG: app}))["TargetGroups"][0][
        "TargetGroupArn"]
    api.elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
    return str(arn)


def _app_rule(api: Api, app: str, listener: str) -> dict[str, Any] | None:
    rules = {r["RuleArn"]: r for r in api.elb.describe_rules(ListenerArn=listener)["Rules"]
             if not r["IsDefault"]}
    arns = list(rules)
    for start in range(0, len(arns), 20):  # DescribeTags takes 20 resources a call
        for described in api.elb.describe_tags(ResourceArns=arns[start:start + 20])[
                "TagDescriptions"]:
            if tag_map(described["Tags"]).get(APP_TAG) == app:
                return dict(rules[described["ResourceArn"]])
    return None


def ensure_routes(api: Api, app: str, shared: Shared, tg_arn: str, domains: list[str],
                  certificate: str | None) -> None:
    """The app's host rule on each shared listener (its own name and the user's domains),
    and on the HTTPS one a certificate for those domains: the one given, else one the
    cloud's CA signs."""
    hosts = [app_host(app, api.region), *domains]
    condition = [{"Field": "host-header", "HostHeaderConfig": {"Values": hosts}}]
    for listener in shared.listeners:
        rule = _app_rule(api, app, listener)
        if rule is None:
            used = {int(r["Priority"]) for r in api.elb.describe_rules(
                ListenerArn=listener)["Rules"] if not r["IsDefault"]}
            api.elb.create_rule(
                ListenerArn=listener, Priority=next(p for p in range(1, 50001) if p not in used),
                Conditions=condition, Actions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
                Tags=tags({APP_TAG: app}))
            continue
        values = [v for c in rule.get("Conditions", []) if c.get("Field") == "host-header"
                  for v in (c.get("HostHeaderConfig") or {}).get("Values") or c.get("Values")
                  or []]
        if values != hosts:
            api.elb.modify_rule(RuleArn=rule["RuleArn"], Conditions=condition)
    if shared.https_listener_arn is None:
        return
    own = _certificates(api, APP_TAG, app)
    wanted = [certificate] if certificate else []
    if domains and not certificate:
        signed = [arn for arn in own if sorted(api.acm.describe_certificate(
            CertificateArn=arn)["Certificate"]["SubjectAlternativeNames"]) == sorted(domains)]
        wanted = signed[:1] or [api.acm.request_certificate(
            DomainName=domains[0], SubjectAlternativeNames=domains, KeyAlgorithm="EC_prime256v1",
            CertificateAuthorityArn=CLOUD_CA_ARN.format(region=api.region),
            Tags=tags({APP_TAG: app}))["CertificateArn"]]
    listener = shared.https_listener_arn
    held = {c["CertificateArn"] for c in api.elb.describe_listener_certificates(
        ListenerArn=listener)["Certificates"]}
    if wanted and wanted[0] not in held:
        try:
            api.elb.add_listener_certificates(ListenerArn=listener,
                                              Certificates=[{"CertificateArn": wanted[0]}])
        except ClientError as err:
            raise DeployError(f"certificate {wanted[0]}: {error_text(err)}") from err
    _drop_certificates(api, listener, [arn for arn in own if arn not in wanted])


def _drop_certificates(api: Api, listener: str | None, arns: list[str]) -> None:
    """The app's own certificates off the HTTPS listener, then deleted."""
    if not arns:
        return
    if listener is not None:
        api.elb.remove_listener_certificates(
            ListenerArn=listener, Certificates=[{"CertificateArn": a} for a in arns])
    for arn in arns:
        api.acm.delete_certificate(CertificateArn=arn)


def _app_group(api: Api, app: str, port: int, shared: Shared) -> str:
    group = _group(api, names(app), shared.vpc_id)
    if group is None:
        group = api.ec2.create_security_group(
            GroupName=names(app), Description=f"gureum deploy: app {app}", VpcId=shared.vpc_id,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": tags({APP_TAG: app})}])["GroupId"]
    rules = api.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    allowed = any(p.get("FromPort") == port and any(
        pair.get("GroupId") == shared.lb_group for pair in p.get("UserIdGroupPairs", []))
        for p in rules.get("IpPermissions", []))
    if not allowed:
        api.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
             "UserIdGroupPairs": [{"GroupId": shared.lb_group}]}])
    return str(group)


def template_data(image_id: str, instance_type: str, group: str) -> dict[str, Any]:
    return {"ImageId": image_id, "InstanceType": instance_type, "SecurityGroupIds": [group]}


def find_template(api: Api, app: str) -> dict[str, Any] | None:
    try:
        return api.ec2.describe_launch_templates(LaunchTemplateNames=[names(app)])[
            "LaunchTemplates"][0]
    except ClientError as err:
        if code(err) in ("InvalidLaunchTemplateName.NotFoundException",
                         "InvalidLaunchTemplateId.NotFound"):
            return None
        raise


def new_template_version(api: Api, app: str, image_id: str, instance_type: str, group: str,
                         release: str) -> tuple[str, str]:
    """(template id, version number) of a version launching `image_id`."""
    data = template_data(image_id, instance_type, group)
    template = find_template(api, app)
    if template is None:
        made = api.ec2.create_launch_template(
            LaunchTemplateName=names(app), VersionDescription=release, LaunchTemplateData=data,
            TagSpecifications=[{"ResourceType": "launch-template",
                                "Tags": tags({APP_TAG: app})}])["LaunchTemplate"]
        return str(made["LaunchTemplateId"]), str(made["LatestVersionNumber"])
    version = api.ec2.create_launch_template_version(
        LaunchTemplateId=template["LaunchTemplateId"], VersionDescription=release,
        LaunchTemplateData=data)["LaunchTemplateVersion"]
    return str(template["LaunchTemplateId"]), str(version["VersionNumber"])


def template_versions(api: Api, template_id: str) -> list[dict[str, Any]]:
    return list(api.ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id)["LaunchTemplateVersions"])


def prepare_app(api: Api, app: str, port: int, health_path: str,
                shared: Shared) -> tuple[str, str]:
    """The app's security group and target group (made or updated): (group id, ARN)."""
    return (_app_group(api, app, port, shared),
            _target_group(api, app, port, health_path, shared.vpc_id))


def create_app(api: Api, app: str, shared: Shared, tg_arn: str, template_id: str,
               version: str, min_size: int, max_size: int, grace: int, release: str) -> None:
    """The Auto Scaling group of a first deploy (its routes: `ensure_routes`)."""
    api.asg.create_auto_scaling_group(
        AutoScalingGroupName=names(app), MinSize=min_size, MaxSize=max_size,
        DesiredCapacity=min_size,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
        VPCZoneIdentifier=shared.subnet_id, TargetGroupARNs=[tg_arn], HealthCheckType="ELB",
        HealthCheckGracePeriod=grace,
        Tags=[{"Key": APP_TAG, "Value": app, "PropagateAtLaunch": True},
              {"Key": RELEASE_TAG, "Value": release, "PropagateAtLaunch": False}])


def track_cpu(api: Api, app: str, percent: float) -> str:
    """A target tracking policy on the group's average CPU (0 removes it); what was done."""
    policy = f"{names(app)}-cpu"
    if not percent:
        try:
            api.asg.delete_policy(AutoScalingGroupName=names(app), PolicyName=policy)
        except ClientError as err:
            if code(err) != "ValidationError":
                raise
        return "CPU tracking off"
    api.asg.put_scaling_policy(
        AutoScalingGroupName=names(app), PolicyName=policy, PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": percent})
    return f"tracking average CPU at {percent:g}%"


def set_release_tag(api: Api, app: str, release: str) -> None:
    api.asg.create_or_update_tags(Tags=[{
        "ResourceId": names(app), "ResourceType": "auto-scaling-group", "Key": RELEASE_TAG,
        "Value": release, "PropagateAtLaunch": False}])


def wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def destroy(api: Api, app: str, say: Callable[[str], None]) -> list[str]:
    """Remove everything `app` owns (and the shared load balancer when no app is left).
    Returns what was removed."""
    removed: list[str] = []
    group = find_group(api, app)
    if group is not None:
        api.asg.delete_auto_scaling_group(AutoScalingGroupName=names(app), ForceDelete=True)
        say(f"Auto Scaling group {names(app)}: terminating its instances")
        if not wait(lambda: find_group(api, app) is None, 180):
            raise DeployError(f"the Auto Scaling group {names(app)} is still being deleted; "
                              "run `gureum destroy` again")
        removed.append(f"Auto Scaling group {names(app)}")
    lb = find_lb(api)
    listener = _listener(api, lb["LoadBalancerArn"]) if lb else None
    https = _listener(api, lb["LoadBalancerArn"], HTTPS_PORT) if lb else None
    for each in (listener, https):
        rule = _app_rule(api, app, each) if each else None
        if rule is not None:
            api.elb.delete_rule(RuleArn=rule["RuleArn"])
            removed.append(f"listener rule {app_host(app, api.region)}")
    own = _certificates(api, APP_TAG, app)
    _drop_certificates(api, https, own)
    removed += [f"certificate {arn}" for arn in own]
    try:
        for tg in api.elb.describe_target_groups(Names=[names(app)])["TargetGroups"]:
            api.elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
            removed.append(f"target group {names(app)}")
    except ClientError as err:
        if code(err) != "TargetGroupNotFound":
            raise
    template = find_template(api, app)
    if template is not None:
        api.ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
        removed.append(f"launch template {names(app)}")
    vpc, _subnet = _default_network(api)
    group_id = _group(api, names(app), vpc)
    if group_id is not None:
        _delete_group(api, group_id)
        removed.append(f"security group {names(app)}")
    for image in releases(api, app):
        api.ec2.deregister_image(ImageId=image["ImageId"])
        removed.append(f"image {image['ImageId']} ({image['Name']})")
    if lb is not None:
        # No app rule left (or no listener at all: a first deploy that failed making it).
        left = [r for each in (listener, https) if each
                for r in api.elb.describe_rules(ListenerArn=each)["Rules"] if not r["IsDefault"]]
        if not left:
            api.elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
            removed.append(f"load balancer {LB_NAME} (no app left on it)")
            for arn in _certificates(api, SHARED_TAG, "apps"):
                api.acm.delete_certificate(CertificateArn=arn)
                removed.append(f"certificate {arn}")
            lb_group = _group(api, LB_GROUP, vpc)
            if lb_group is not None:
                _delete_group(api, lb_group)
                removed.append(f"security group {LB_GROUP}")
    return removed


def _delete_group(api: Api, group_id: str) -> None:
    """A group still referenced by a leaving instance or load balancer: retry briefly."""
    deadline = time.monotonic() + 60
    while True:
        try:
            api.ec2.delete_security_group(GroupId=group_id)
            return
        except ClientError as err:
            if code(err) != "DependencyViolation" or time.monotonic() > deadline:
                raise
            time.sleep(1)
