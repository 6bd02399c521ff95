"""Launch templates: versioned RunInstances parameters ($Latest, $Default, numbers), and
RunInstances from a template with the request's own parameters on top, as AWS merges."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.services.ec2.handlers import common
from gureum.store import models

# What a template may hold here; AWS has more (those are refused, not ignored).
SUPPORTED = {"ImageId", "InstanceType", "KeyName", "SecurityGroupIds", "SecurityGroups",
             "NetworkInterfaces", "UserData", "TagSpecifications", "MetadataOptions",
             "BlockDeviceMappings", "Placement", "DisableApiTermination"}
_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")
MAX_VERSIONS = 10000


def _check_data(data: dict[str, Any]) -> dict[str, Any]:
    unsupported = sorted(set(data) - SUPPORTED)
    if unsupported:
        raise exc.UnsupportedOperation(
            f"Launch template parameter {unsupported[0]} is not supported by gureum")
    for interface in data.get("NetworkInterfaces") or []:
        if interface.get("DeviceIndex", 0) != 0:
            raise exc.UnsupportedOperation("Only one network interface, at device index 0, "
                                           "is supported")
    return data


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > 255:
        raise exc.InvalidParameterValue("VersionDescription exceeds 255 characters")


def find(s: Any, account_id: str, template_id: str | None,
         name: str | None) -> models.LaunchTemplate:
    if template_id:
        if not ids.is_valid(template_id, "lt"):
            raise exc.InvalidLaunchTemplateIdMalformed(
                f"The launch template ID '{template_id[:64]}' is malformed")
        found = s.get(models.LaunchTemplate, template_id)
        if found is None or found.account_id != account_id:
            raise exc.InvalidLaunchTemplateIdNotFound(
                f"The specified launch template, with template ID {template_id}, does not exist.")
        return found
    if name:
        found = s.scalar(select(models.LaunchTemplate).where(
            models.LaunchTemplate.account_id == account_id, models.LaunchTemplate.name == name))
        if found is None:
            raise exc.InvalidLaunchTemplateNameNotFound(
                f"The specified launch template, with template name {name[:128]}, does not exist.")
        return found
    raise exc.MissingParameter("The request must contain the parameter LaunchTemplateName or "
                               "LaunchTemplateId")


def version_number(template: models.LaunchTemplate, wanted: str | None) -> int:
    if wanted in (None, "", "$Default"):
        return template.default_version
    if wanted == "$Latest":
        return template.latest_version
    if not str(wanted).isdigit():
        raise exc.InvalidLaunchTemplateIdVersionNotFound(
            f"Could not find launch template version {str(wanted)[:32]} for {template.template_id}")
    return int(wanted)


def resolved_number(s: Any, template: models.LaunchTemplate, wanted: str | None) -> int:
    """A version name as a number; $Latest is the newest version that still exists (the
    newest may have been deleted)."""
    if wanted == "$Latest":
        newest = s.scalar(select(func.max(models.LaunchTemplateVersion.number)).where(
            models.LaunchTemplateVersion.template_id == template.template_id))
        if newest is not None:
            return int(newest)
    return version_number(template, wanted)


def version(s: Any, template: models.LaunchTemplate, wanted: str | None) -> models.LaunchTemplateVersion:
    number = resolved_number(s, template, wanted)
    found = s.get(models.LaunchTemplateVersion, (template.template_id, number))
    if found is None:
        raise exc.InvalidLaunchTemplateIdVersionNotFound(
            f"Could not find launch template version {number} for {template.template_id}")
    return found


def resolve(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    """RunInstances parameters with its LaunchTemplate expanded under them."""
    spec = p.get("LaunchTemplate")
    if not spec:
        return p
    with ctx.cloud.store.read() as s:
        template = find(s, ctx.account_id, spec.get("LaunchTemplateId"),
                        spec.get("LaunchTemplateName"))
        data = dict(version(s, template, spec.get("Version")).data)
    merged = {**data, **{k: v for k, v in p.items() if k != "LaunchTemplate"}}
    if p.get("SubnetId") or p.get("SecurityGroupIds") or p.get("SecurityGroups"):
        # The request names its own placement: the template's interface settings yield.
        interfaces = merged.get("NetworkInterfaces") if "NetworkInterfaces" in p else None
        merged.pop("NetworkInterfaces", None)
        if interfaces:
            merged["NetworkInterfaces"] = interfaces
    return merged


def _template_view(t: models.LaunchTemplate, tags: dict[str, str]) -> dict[str, Any]:
    return {"LaunchTemplateId": t.template_id, "LaunchTemplateName": t.name,
            "CreateTime": t.created_at, "CreatedBy": f"arn:aws:iam::{t.account_id}:root",
            "DefaultVersionNumber": t.default_version, "LatestVersionNumber": t.latest_version,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}


def _version_view(t: models.LaunchTemplate, v: models.LaunchTemplateVersion) -> dict[str, Any]:
    return {"LaunchTemplateId": t.template_id, "LaunchTemplateName": t.name,
            "VersionNumber": v.number, "VersionDescription": v.description,
            "CreateTime": v.created_at, "CreatedBy": f"arn:aws:iam::{t.account_id}:root",
            "DefaultVersion": v.number == t.default_version, "LaunchTemplateData": v.data}


@action("ec2", "CreateLaunchTemplate")
def create_launch_template(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["LaunchTemplateName"]
    if not _NAME.match(name):
        raise exc.InvalidLaunchTemplateNameMalformed(
            "A launch template name must be 3 to 128 characters: letters, digits, ( ) . - / _")
    data = _check_data(p["LaunchTemplateData"])
    _check_description(p.get("VersionDescription"))
    tags = common.tags_from_specs(p, "launch-template")
    with ctx.cloud.store.write() as s:
        if s.scalar(select(models.LaunchTemplate).where(
                models.LaunchTemplate.account_id == ctx.account_id,
                models.LaunchTemplate.name == name)) is not None:
            raise exc.InvalidLaunchTemplateNameAlreadyExists(
                f"Launch template name already in use: {name}")
        template = models.LaunchTemplate(template_id=ids.new("lt"), account_id=ctx.account_id,
                                         name=name)
        s.add(template)
        s.flush()
        s.add(models.LaunchTemplateVersion(template_id=template.template_id, number=1,
                                           description=p.get("VersionDescription"), data=data))
        common.put_tags(s, ctx.account_id, template.template_id, tags)
        return {"LaunchTemplate": _template_view(template, dict(tags))}


@action("ec2", "CreateLaunchTemplateVersion")
def create_launch_template_version(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    data = _check_data(p["LaunchTemplateData"])
    _check_description(p.get("VersionDescription"))
    with ctx.cloud.store.write() as s:
        template = find(s, ctx.account_id, p.get("LaunchTemplateId"), p.get("LaunchTemplateName"))
        if p.get("SourceVersion"):  # the source's parameters, the request's on top
            data = {**version(s, template, p["SourceVersion"]).data, **data}
        if template.latest_version >= MAX_VERSIONS:
            raise exc.VersionLimitExceeded("A launch template has at most 10000 versions")
        template.latest_version += 1
        row = models.LaunchTemplateVersion(template_id=template.template_id,
                                           number=template.latest_version,
                                           description=p.get("VersionDescription"), data=data)
        s.add(row)
        s.flush()
        return {"LaunchTemplateVersion": _version_view(template, row)}


@action("ec2", "DescribeLaunchTemplates")
def describe_launch_templates(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), {"launch-template-name", "create-time"})
    with ctx.cloud.store.read() as s:
        if p.get("LaunchTemplateIds") or p.get("LaunchTemplateNames"):
            rows = [find(s, ctx.account_id, i, None) for i in p.get("LaunchTemplateIds") or []]
            rows += [find(s, ctx.account_id, None, n) for n in p.get("LaunchTemplateNames") or []]
        else:
            rows = list(s.scalars(select(models.LaunchTemplate).where(
                models.LaunchTemplate.account_id == ctx.account_id)
                .order_by(models.LaunchTemplate.created_at)))
        tags = common.tags_of(s, ctx.account_id, [t.template_id for t in rows])
        views = [_template_view(t, tags[t.template_id]) for t in rows
                 if filters.match(flt, {"launch-template-name": t.name,
                                        "create-time": t.created_at.isoformat()},
                                  tags[t.template_id])]
    chunk, token = common.page(views, p.get("MaxResults"), p.get("NextToken"), lo=1, hi=200)
    return {"LaunchTemplates": chunk, "NextToken": token}


@action("ec2", "DescribeLaunchTemplateVersions")
def describe_launch_template_versions(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    flt = filters.validate(p.get("Filters"), {"is-default-version", "image-id",
                                              "instance-type", "key-name"})
    with ctx.cloud.store.read() as s:
        template = find(s, ctx.account_id, p.get("LaunchTemplateId"), p.get("LaunchTemplateName"))
        if p.get("Versions"):
            rows = [version(s, template, v) for v in p["Versions"]]
        else:
            rows = list(s.scalars(select(models.LaunchTemplateVersion).where(
                models.LaunchTemplateVersion.template_id == template.template_id)
                .order_by(models.LaunchTemplateVersion.number.desc())))
            low = int(p["MinVersion"]) if str(p.get("MinVersion", "")).isdigit() else 0
            high = int(p["MaxVersion"]) if str(p.get("MaxVersion", "")).isdigit() else MAX_VERSIONS
            rows = [v for v in rows if low <= v.number <= high]
        views = [_version_view(template, v) for v in rows if filters.match(flt, {
            "is-default-version": str(v.number == template.default_version).lower(),
            "image-id": v.data.get("ImageId"), "instance-type": v.data.get("InstanceType"),
            "key-name": v.data.get("KeyName")}, {})]
    chunk, token = common.page(views, p.get("MaxResults"), p.get("NextToken"), lo=1, hi=200)
    return {"LaunchTemplateVersions": chunk, "NextToken": token}


@action("ec2", "ModifyLaunchTemplate")
def modify_launch_template(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        template = find(s, ctx.account_id, p.get("LaunchTemplateId"), p.get("LaunchTemplateName"))
        if p.get("DefaultVersion"):
            template.default_version = version(s, template, p["DefaultVersion"]).number
        tags = common.tags_of(s, ctx.account_id, [template.template_id])[template.template_id]
        return {"LaunchTemplate": _template_view(template, tags)}


@action("ec2", "DeleteLaunchTemplate")
def delete_launch_template(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        template = find(s, ctx.account_id, p.get("LaunchTemplateId"), p.get("LaunchTemplateName"))
        tags = common.tags_of(s, ctx.account_id, [template.template_id])[template.template_id]
        view = _template_view(template, tags)
        for row in s.scalars(select(models.LaunchTemplateVersion).where(
                models.LaunchTemplateVersion.template_id == template.template_id)):
            s.delete(row)
        s.flush()
        common.delete_with_tags(s, template)
        return {"LaunchTemplate": view}


@action("ec2", "DeleteLaunchTemplateVersions")
def delete_launch_template_versions(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    done, failed = [], []
    with ctx.cloud.store.write() as s:
        template = find(s, ctx.account_id, p.get("LaunchTemplateId"), p.get("LaunchTemplateName"))
        for wanted in p["Versions"]:
            base = {"LaunchTemplateId": template.template_id,
                    "LaunchTemplateName": template.name}
            number = int(wanted) if str(wanted).isdigit() else None
            row = s.get(models.LaunchTemplateVersion, (template.template_id, number)) \
                if number is not None else None
            if row is None:
                failed.append({**base, "VersionNumber": number or 0, "ResponseError": {
                    "Code": "launchTemplateVersionDoesNotExist",
                    "Message": f"The launch template version {str(wanted)[:32]} does not exist"}})
            elif number == template.default_version:
                failed.append({**base, "VersionNumber": number, "ResponseError": {
                    "Code": "launchTemplateVersionIsDefaultVersion",
                    "Message": "The default version of a launch template cannot be deleted"}})
            else:
                s.delete(row)
                done.append({**base, "VersionNumber": number})
    return {"SuccessfullyDeletedLaunchTemplateVersions": done,
            "UnsuccessfullyDeletedLaunchTemplateVersions": failed}


@action("ec2", "GetLaunchTemplateData")
def get_launch_template_data(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    import base64

    from gureum.services.ec2.views import options_of

    with ctx.cloud.store.read() as s:
        inst = common.instances_by_id(s, ctx.account_id, [p["InstanceId"]])[0]
        tags = common.tags_of(s, ctx.account_id, [inst.instance_id])[inst.instance_id]
    data: dict[str, Any] = {
        "ImageId": inst.image_id, "InstanceType": inst.instance_type,
        "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": inst.subnet_id,
                               "Groups": list(inst.security_group_ids),
                               "AssociatePublicIpAddress": inst.assign_public_ip}],
        "MetadataOptions": {k: v for k, v in options_of(inst).items() if k != "State"},
        "DisableApiTermination": inst.disable_api_termination,
        "Placement": {"AvailabilityZone": inst.availability_zone},
    }
    if inst.key_name:
        data["KeyName"] = inst.key_name
    if inst.user_data:
        data["UserData"] = base64.b64encode(inst.user_data).decode()
    if tags:
        data["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [
            {"Key": k, "Value": v} for k, v in sorted(tags.items())]}]
    return {"LaunchTemplateData": data}
