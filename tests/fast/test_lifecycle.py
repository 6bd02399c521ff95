"""Instance lifecycle through boto3 against the in-process cloud and the fake agent."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, state_of, wait_state


def run(ec2, image_id: str, count: int = 1, **kwargs) -> list[str]:  # noqa: ANN001, ANN003
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=count,
                            MaxCount=count, **kwargs)
    return [i["InstanceId"] for i in res["Instances"]]


def test_run_turns_running_on_the_host(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    [iid] = run(ec2, image_id)
    wait_state(ec2, iid, "running")
    assert fast.agent.alive(iid)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["PublicIpAddress"] in fast.agent.public_ips
    assert fast.agent.public_ips[inst["PublicIpAddress"]][0] == inst["PrivateIpAddress"]


def test_stop_start_keeps_disk_and_boots_again(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    [iid] = run(ec2, image_id)
    wait_state(ec2, iid, "running")
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    assert not fast.agent.alive(iid) and iid in fast.agent.disks
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    out = ec2.get_console_output(InstanceId=iid)["Output"].encode()
    assert b"boot 2 of " + iid.encode() in out


def test_terminate_leaves_nothing(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    [iid] = run(ec2, image_id)
    wait_state(ec2, iid, "running")
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert iid not in fast.agent.instances() and iid not in fast.agent.disks


def test_reboot_boots_again(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    [iid] = run(ec2, image_id)
    wait_state(ec2, iid, "running")
    ec2.reboot_instances(InstanceIds=[iid])
    assert wait_for(lambda: b"boot 2" in fast.agent.consoles[iid], 10)
    assert state_of(ec2, iid) == "running"


def test_many_instances_at_once(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    ids = run(ec2, image_id, count=10)
    for iid in ids:
        wait_state(ec2, iid, "running")
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")


def test_unknown_instance_is_not_found(ec2) -> None:  # noqa: ANN001
    with pytest.raises(ClientError) as err:
        ec2.stop_instances(InstanceIds=["i-0123456789abcdef0"])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_a_batch_bigger_than_the_worker_pool_launches_at_once(
        fast: FastCloud, ec2, image_id, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Booting instances wait on the boot watcher, not on a reconcile worker each: while
    none has answered yet, every instance of the batch is already launched."""
    booted = threading.Event()
    real_ready = fast.agent.ssh_ready
    monkeypatch.setattr(fast.agent, "ssh_ready", lambda spec: booted.is_set() and real_ready(spec))
    workers = fast.cloud.controller.pool._max_workers
    ids = run(ec2, image_id, count=workers + 4)
    try:
        assert wait_for(lambda: all(fast.agent.alive(i) for i in ids), 10), \
            "launches waited for earlier instances' sshd"
        assert {state_of(ec2, i) for i in ids} == {"pending"}
    finally:
        booted.set()
    for iid in ids:
        wait_state(ec2, iid, "running")
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")


def test_terminating_a_booting_instance_does_not_wait_for_its_sshd(
        fast: FastCloud, ec2, image_id, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(fast.agent, "ssh_ready", lambda spec: False)  # never answers
    [iid] = run(ec2, image_id)
    assert wait_for(lambda: fast.agent.alive(iid), 10)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated", timeout=10)  # not the 60 s sshd timeout
    assert iid not in fast.agent.instances()
