"""Launch templates: versions, defaults, and RunInstances from a template with overrides."""

from __future__ import annotations

import base64

from helpers import error_code as code

from gureum.testing_inprocess import FastCloud, wait_state


def test_versions_defaults_and_run_instances(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    user_data = base64.b64encode(b"#!/bin/sh\necho from-template\n").decode()
    made = ec2.create_launch_template(LaunchTemplateName="web", VersionDescription="first",
                                      LaunchTemplateData={
                                          "ImageId": image_id, "InstanceType": "t3.nano",
                                          "UserData": user_data,
                                          "TagSpecifications": [{"ResourceType": "instance",
                                                                 "Tags": [{"Key": "app",
                                                                           "Value": "web"}]}],
                                          "MetadataOptions": {"HttpTokens": "required"}})[
        "LaunchTemplate"]
    lt = made["LaunchTemplateId"]
    assert made["DefaultVersionNumber"] == 1 and made["LatestVersionNumber"] == 1
    assert code(ec2.create_launch_template, LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": image_id}) == "InvalidLaunchTemplateName.AlreadyExistsException"
    v2 = ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                            LaunchTemplateData={"InstanceType": "t3.micro"})[
        "LaunchTemplateVersion"]
    assert v2["VersionNumber"] == 2 and v2["LaunchTemplateData"]["ImageId"] == image_id
    assert v2["LaunchTemplateData"]["InstanceType"] == "t3.micro" and not v2["DefaultVersion"]
    versions = ec2.describe_launch_template_versions(LaunchTemplateName="web")[
        "LaunchTemplateVersions"]
    assert [v["VersionNumber"] for v in versions] == [2, 1]
    latest = ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["$Latest"])[
        "LaunchTemplateVersions"]
    assert latest[0]["VersionNumber"] == 2

    # $Default (1): t3.nano from the template; an override on top of $Latest (2).
    first = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={
        "LaunchTemplateId": lt})["Instances"][0]
    assert first["InstanceType"] == "t3.nano"
    assert {"Key": "app", "Value": "web"} in first["Tags"]
    assert first["MetadataOptions"]["HttpTokens"] == "required"
    second = ec2.run_instances(MinCount=1, MaxCount=1, InstanceType="t3.small", LaunchTemplate={
        "LaunchTemplateName": "web", "Version": "$Latest"})["Instances"][0]
    assert second["InstanceType"] == "t3.small"
    for inst in (first, second):
        wait_state(ec2, inst["InstanceId"], "running")
    data = ec2.get_launch_template_data(InstanceId=first["InstanceId"])["LaunchTemplateData"]
    assert data["ImageId"] == image_id and data["UserData"] == user_data

    ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="2")
    assert ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0][
        "DefaultVersionNumber"] == 2
    deleted = ec2.delete_launch_template_versions(LaunchTemplateId=lt, Versions=["2", "1"])
    assert [d["VersionNumber"] for d in deleted["SuccessfullyDeletedLaunchTemplateVersions"]] == [1]
    assert deleted["UnsuccessfullyDeletedLaunchTemplateVersions"][0]["ResponseError"]["Code"] == \
        "launchTemplateVersionIsDefaultVersion"
    assert code(ec2.run_instances, MinCount=1, MaxCount=1, LaunchTemplate={
        "LaunchTemplateId": lt, "Version": "1"}) == "InvalidLaunchTemplateId.VersionNotFound"
    ec2.terminate_instances(InstanceIds=[first["InstanceId"], second["InstanceId"]])
    ec2.delete_launch_template(LaunchTemplateId=lt)
    assert code(ec2.describe_launch_templates, LaunchTemplateIds=[lt]) == \
        "InvalidLaunchTemplateId.NotFound"


def test_launch_template_errors(ec2, image_id) -> None:  # noqa: ANN001
    assert code(ec2.describe_launch_templates, LaunchTemplateNames=["nope"]) == \
        "InvalidLaunchTemplateName.NotFoundException"
    assert code(ec2.describe_launch_templates, LaunchTemplateIds=["lt-bad"]) == \
        "InvalidLaunchTemplateId.Malformed"
    assert code(ec2.create_launch_template, LaunchTemplateName="x", LaunchTemplateData={
        "ImageId": image_id}) == "InvalidLaunchTemplateName.MalformedException"
    assert code(ec2.create_launch_template, LaunchTemplateName="gpu", LaunchTemplateData={
        "ImageId": image_id, "ElasticGpuSpecifications": [{"Type": "eg1.medium"}]}) == \
        "UnsupportedOperation"
    assert code(ec2.run_instances, MinCount=1, MaxCount=1, LaunchTemplate={
        "LaunchTemplateName": "nope"}) == "InvalidLaunchTemplateName.NotFoundException"


def test_latest_is_the_newest_version_that_still_exists(ec2, image_id) -> None:  # noqa: ANN001
    lt = ec2.create_launch_template(LaunchTemplateName="latest-left", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    for kind in ("t3.micro", "t3.small"):
        ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                           LaunchTemplateData={"InstanceType": kind})
    ec2.delete_launch_template_versions(LaunchTemplateId=lt, Versions=["3"])
    inst = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={
        "LaunchTemplateId": lt, "Version": "$Latest"})["Instances"][0]
    assert inst["InstanceType"] == "t3.micro"  # version 2
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
