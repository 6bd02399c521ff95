"""What each VPC's DNS and metadata answer is pushed to the host (`serve_vpc`) whenever it
changes: before a launch, after tag, option and attribute changes, and not at all when
nothing changed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gureum.agent.contract import InstanceSpec, VpcServices
from gureum.agent.vpc_services import dns_answer
from gureum.controllers.vpc_services import RESYNC_SECONDS
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state

SOON = RESYNC_SECONDS / 2  # before the periodic pass: the change woke the pusher


def served(fast: FastCloud, vpc_id: str) -> VpcServices | None:
    return fast.agent.served.get(vpc_id)


def meta(fast: FastCloud, inst: dict[str, Any]) -> Any:  # noqa: ANN401
    services = served(fast, inst["VpcId"])
    return services.instances.get(inst["PrivateIpAddress"]) if services else None


def test_a_launch_finds_its_metadata_served(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    agent, seen = fast.agent, {}
    original = agent.launch

    def launch(spec: InstanceSpec) -> None:  # what the first boot would read
        services = agent.served.get(spec.vpc.vpc_id)
        seen[spec.instance_id] = services is not None and \
            services.instances.get(spec.private_ip) is not None and \
            services.instances[spec.private_ip].instance_id == spec.instance_id
        original(spec)

    agent.launch = launch  # type: ignore[method-assign]
    try:
        inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
        wait_state(ec2, inst["InstanceId"], "running")
    finally:
        del agent.launch
    assert seen == {inst["InstanceId"]: True}
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    wait_state(ec2, inst["InstanceId"], "terminated")
    assert wait_for(lambda: meta(fast, inst) is None, SOON), "a terminated instance is not served"


def test_changes_are_pushed_and_nothing_else(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, MetadataOptions={
        "InstanceMetadataTags": "enabled"})["Instances"][0]
    iid, vpc_id = inst["InstanceId"], inst["VpcId"]
    wait_state(ec2, iid, "running")
    assert meta(fast, inst).tree["tags"]["instance"] == {}
    try:
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": "pushed"}])
        assert wait_for(lambda: meta(fast, inst).tree["tags"]["instance"] == {"Name": "pushed"},
                        SOON)
        # Applied before the answer: the very next metadata read sees the new options.
        answer = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
        assert answer["InstanceMetadataOptions"]["State"] == "applied"
        assert meta(fast, inst).http_tokens == "required"
        name = inst["PrivateDnsName"]
        assert dns_answer(served(fast, vpc_id), name, "A", inst["PrivateIpAddress"])
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
        assert wait_for(lambda: not served(fast, vpc_id).dns_support, SOON)  # type: ignore[union-attr]
        assert dns_answer(served(fast, vpc_id), name, "A", inst["PrivateIpAddress"]) is None
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
        assert wait_for(lambda: served(fast, vpc_id).dns_support, SOON)  # type: ignore[union-attr]

        # A commit that changes nothing served wakes the pusher, which pushes nothing.
        pusher = fast.cloud.network_controller.services  # type: ignore[union-attr]
        pushes = sum(1 for method, _ in fast.agent.calls if method == "serve_vpc")
        group = ec2.create_security_group(GroupName="no-push", Description="x")["GroupId"]
        ec2.create_tags(Resources=[group], Tags=[{"Key": "k", "Value": "v"}])
        pusher.sync()
        assert sum(1 for method, _ in fast.agent.calls if method == "serve_vpc") == pushes
        ec2.delete_security_group(GroupId=group)
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")


def test_a_launch_into_a_served_vpc_pushes_its_instance_alone(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    first = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
    wait_state(ec2, first["InstanceId"], "running")
    pusher = fast.cloud.network_controller.services  # type: ignore[union-attr]
    idle = threading.Event()
    pusher.sync = idle.set  # type: ignore[method-assign]  # the loop pushes nothing now
    pusher.wakeup.set()
    assert idle.wait(SOON)  # ... once a pass it may have been making has ended
    whole = sum(1 for method, _ in fast.agent.calls if method == "serve_vpc")
    try:
        second = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
        wait_state(ec2, second["InstanceId"], "running")
        assert meta(fast, second).instance_id == second["InstanceId"]  # before its launch
        assert ("serve_instance", second["VpcId"]) in fast.agent.calls
        assert sum(1 for method, _ in fast.agent.calls if method == "serve_vpc") == whole
        name = second["PrivateDnsName"]  # a DNS name is the whole push's to add
        assert not dns_answer(served(fast, second["VpcId"]), name, "A",
                              second["PrivateIpAddress"])
    finally:
        del pusher.sync
    pusher.wakeup.set()
    assert wait_for(lambda: dns_answer(served(fast, second["VpcId"]), name, "A",
                                       second["PrivateIpAddress"]), SOON)
    ids = [first["InstanceId"], second["InstanceId"]]
    ec2.terminate_instances(InstanceIds=ids)
    for instance_id in ids:
        wait_state(ec2, instance_id, "terminated")


def test_patched_answers_equal_a_full_read(fast: FastCloud, ec2, image_id,  # noqa: ANN001
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Passes that know which instances a commit touched patch only their parts: what is
    served must equal what reading everything gives, through launches, tags, option
    changes, an attached interface, a stop and terminations."""
    from gureum.controllers import vpc_services

    pusher = fast.cloud.network_controller.services  # type: ignore[union-attr]
    patched: list[frozenset[str]] = []
    original = vpc_services.patch

    def counting(s, cloud, views, touched, cache):  # noqa: ANN001, ANN202
        patched.append(touched)
        return original(s, cloud, views, touched, cache)

    monkeypatch.setattr(vpc_services, "patch", counting)
    monkeypatch.setattr(pusher, "resync_seconds", 3600.0)  # no full read on a timer

    def agrees(vpc_id: str) -> bool:
        with pusher.lock:
            pusher.sync()  # a pass of the loop's own, under its lock
            with fast.cloud.store.read() as s:
                full = vpc_services.build(s, fast.cloud, {vpc_id})[vpc_id]
            view = pusher.views.get(vpc_id)
            return view is not None and view.services == full.services \
                and served(fast, vpc_id) == full.services

    first, second = ec2.run_instances(ImageId=image_id, MinCount=2, MaxCount=2, MetadataOptions={
        "InstanceMetadataTags": "enabled"})["Instances"]
    vpc_id, ids = first["VpcId"], [first["InstanceId"], second["InstanceId"]]
    for iid in ids:
        wait_state(ec2, iid, "running")
    assert wait_for(lambda: agrees(vpc_id), SOON)
    patched.clear()
    ec2.create_tags(Resources=[first["InstanceId"]], Tags=[{"Key": "Name", "Value": "one"}])
    assert wait_for(lambda: agrees(vpc_id) and meta(fast, first).tree["tags"]["instance"]
                    == {"Name": "one"}, SOON)
    ec2.modify_instance_metadata_options(InstanceId=second["InstanceId"], HttpTokens="required")
    assert wait_for(lambda: agrees(vpc_id) and meta(fast, second).http_tokens == "required",
                    SOON)
    eni = ec2.create_network_interface(SubnetId=first["SubnetId"])["NetworkInterface"]
    ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                 InstanceId=first["InstanceId"], DeviceIndex=1)
    assert wait_for(lambda: agrees(vpc_id) and len(
        meta(fast, first).tree["network"]["interfaces"]["macs"]) == 2, SOON)
    ec2.stop_instances(InstanceIds=[second["InstanceId"]])
    wait_state(ec2, second["InstanceId"], "stopped")
    assert wait_for(lambda: agrees(vpc_id) and meta(fast, second) is None, SOON)
    assert any(first["InstanceId"] in touched for touched in patched)
    assert any(second["InstanceId"] in touched for touched in patched)
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")
    assert wait_for(lambda: agrees(vpc_id) and meta(fast, first) is None, SOON)
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
