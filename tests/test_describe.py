"""Describe* actions: filters, paging, tags, key pairs, images, regions, zones, types."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from helpers import ssh, wait_state


def ids_of(res) -> list[str]:  # noqa: ANN001
    return [i["InstanceId"] for r in res["Reservations"] for i in r["Instances"]]


def test_filters(ec2, launch, key_pair):
    a = launch(TagSpecifications=[{"ResourceType": "instance", "Tags": [
        {"Key": "role", "Value": "web"}, {"Key": "env", "Value": "prod"}]}])["Instances"][0]
    b = launch(InstanceType="t3.nano", TagSpecifications=[{"ResourceType": "instance", "Tags": [
        {"Key": "role", "Value": "db"}]}])["Instances"][0]
    both = {a["InstanceId"], b["InstanceId"]}

    def find(*filters) -> set[str]:  # noqa: ANN002
        res = ec2.describe_instances(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return set(ids_of(res)) & both

    assert find(("tag:role", ["web"])) == {a["InstanceId"]}
    assert find(("tag:role", ["w*"])) == {a["InstanceId"]}
    assert find(("tag-key", ["env"])) == {a["InstanceId"]}
    assert find(("instance-type", ["t3.nano"])) == {b["InstanceId"]}
    assert find(("instance-id", [a["InstanceId"], b["InstanceId"]])) == both
    assert find(("private-ip-address", [b["PrivateIpAddress"]])) == {b["InstanceId"]}
    assert find(("ip-address", [a["PublicIpAddress"]])) == {a["InstanceId"]}
    assert find(("key-name", [key_pair[0]]), ("tag:role", ["db"])) == {b["InstanceId"]}
    assert find(("availability-zone", ["gureum-1a"])) == both
    assert find(("image-id", [a["ImageId"]])) == both
    wait_state(ec2, a["InstanceId"], "running")
    wait_state(ec2, b["InstanceId"], "running")
    assert find(("instance-state-name", ["running"])) == both
    assert find(("instance-state-name", ["stopped"])) == set()


def test_paging_returns_each_instance_once(ec2, launch):
    launch(MinCount=7, MaxCount=7)
    seen: list[str] = []
    pages = 0
    for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}):
        pages += 1
        seen += ids_of(page)
    assert len(seen) == len(set(seen)) >= 7 and pages >= 2


def test_tags_lifecycle(ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert {(t["Key"], t["Value"], t["ResourceType"]) for t in tags} == {
        ("a", "1", "instance"), ("b", "2", "instance")}
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "a", "Value": "wrong"}])  # value must match
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "b"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("a", "1")]


def test_key_pairs(ec2, server, image_id, launch):
    created = ec2.create_key_pair(KeyName="rsa-key")
    assert created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert len(created["KeyFingerprint"].split(":")) == 20  # SHA-1 of the private key, as AWS
    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH)
    imported = ec2.import_key_pair(KeyName="imported", PublicKeyMaterial=public + b" me@laptop")
    assert imported["KeyName"] == "imported"
    listed = {k["KeyName"]: k for k in ec2.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]}
    assert listed["rsa-key"]["KeyType"] == "rsa" and listed["imported"]["KeyType"] == "ed25519"
    assert listed["imported"]["PublicKey"].split()[:2] == public.decode().split()[:2]
    assert "KeyMaterial" not in listed["rsa-key"]
    # The RSA private key AWS-style clients save logs in for real.
    pem = server.data_dir / "rsa-key.pem"
    pem.write_text(created["KeyMaterial"])
    pem.chmod(0o600)
    inst = launch(KeyName="rsa-key")["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    assert ssh(pem, ip, "whoami").stdout.strip() == "ec2-user"
    ec2.delete_key_pair(KeyName="imported")
    assert "imported" not in {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert ec2.delete_key_pair(KeyName="imported")["Return"] is True  # gone already: still fine
    ec2.delete_key_pair(KeyName="rsa-key")


def test_images_regions_zones_types_attributes(ec2, image_id):
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": ["gureum-debian-12-*"]}])["Images"]
    # The default image, then the one with systemd as init (gureum up builds both; the
    # fast tier's cloud has only the default).
    assert [i["ImageId"] for i in images][0] == image_id
    assert ["-systemd-" in i["Name"] for i in images] in ([False], [False, True])
    assert images[0]["State"] == "available" and images[0]["Architecture"] == "x86_64"
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["ImageId"] == image_id
    assert [r["RegionName"] for r in ec2.describe_regions()["Regions"]] == ["gureum-1"]
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["gureum-1a"] and zones[0]["State"] == "available"
    types = {t["InstanceType"] for t in ec2.describe_instance_types()["InstanceTypes"]}
    assert {"t3.nano", "t3.micro", "t3.small", "t3.medium", "t3.large", "m5.large", "c5.large"} <= types
    attrs = {a["AttributeName"]: a for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert attrs["supported-platforms"]["AttributeValues"] == [{"AttributeValue": "VPC"}]
    assert attrs["default-vpc"]["AttributeValues"][0]["AttributeValue"].startswith("vpc-")


def test_instance_status_and_attributes(ec2, launch):
    iid = launch()["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    status = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert status["InstanceState"]["Name"] == "running"
    assert status["InstanceStatus"]["Status"] == "ok"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")[
        "InstanceType"]["Value"] == "t3.micro"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    assert ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"] == []
    assert ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)[
        "InstanceStatuses"][0]["InstanceState"]["Name"] == "stopped"
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    ec2.start_instances(InstanceIds=[iid])
    running = wait_state(ec2, iid, "running")
    assert running["InstanceType"] == "t3.small"
