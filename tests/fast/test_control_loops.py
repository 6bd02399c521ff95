"""The instance controller's retries and drift repair, driven through a FakeAgent whose
host a test breaks on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from gureum.agent.contract import InstanceSpec, Limits, VpcNetwork
from gureum.controllers.instances import BACKOFF_CAP, backoff
from gureum.errors import AgentUnavailable, HostCommandFailed
from gureum.store import models
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, state_of, wait_state


@pytest.fixture
def quick(fast: FastCloud):  # noqa: ANN201
    """Periodic passes every 0.2 s instead of every few seconds."""
    controller = fast.cloud.controller
    saved = controller.health_interval, controller.gc_interval
    controller.health_interval = controller.gc_interval = 0.2
    yield fast
    controller.health_interval, controller.gc_interval = saved


def run_one(ec2, image_id: str) -> str:  # noqa: ANN001
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1)
    return res["Instances"][0]["InstanceId"]


def row(fast: FastCloud, instance_id: str) -> models.Instance:
    with fast.cloud.store.read() as s:
        inst = s.get(models.Instance, instance_id)
        assert inst is not None
        return inst


def attempts_of(fast: FastCloud, method: str, instance_id: str) -> int:
    return sum(1 for call in fast.agent.calls if call == (method, instance_id))


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(50) == BACKOFF_CAP


def test_failed_launch_backs_off_then_ends_terminated(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    failure = HostCommandFailed(["runc", "create"], 1, "no space left on device")
    fast.agent.fail_next("launch", failure, times=3)
    iid = run_one(ec2, image_id)
    assert wait_for(lambda: row(fast, iid).attempts == 1, 5)
    inst = row(fast, iid)
    assert "no space left on device" in (inst.last_error or "")
    assert inst.next_attempt_at is not None
    # Held by the stored backoff (1 s, then 2 s), not retried on every 1 s tick.
    assert attempts_of(fast, "launch", iid) == 1
    wait_state(ec2, iid, "terminated", timeout=15)
    assert attempts_of(fast, "launch", iid) == 3
    reason = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "StateReason"]
    assert reason["Code"] == "Server.InternalError"
    assert "no space left on device" in reason["Message"]


def test_unreachable_agent_is_not_a_failed_attempt(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    fast.agent.fail_next("launch", AgentUnavailable("agent restarting"), times=2)
    iid = run_one(ec2, image_id)
    wait_state(ec2, iid, "running", timeout=10)
    assert row(fast, iid).attempts == 0 and row(fast, iid).last_error is None
    ec2.terminate_instances(InstanceIds=[iid])


def test_failing_stop_is_bounded_and_reported_impaired(fast: FastCloud, ec2, image_id, monkeypatch) -> None:  # noqa: ANN001
    import gureum.controllers.instances as ctl

    monkeypatch.setattr(ctl, "BACKOFF_BASE", 0.05)
    monkeypatch.setattr(ctl, "BACKOFF_CAP", 0.2)
    iid = run_one(ec2, image_id)
    wait_state(ec2, iid, "running")
    fast.agent.fail_next("stop", times=models.IMPAIRED_AFTER)
    ec2.stop_instances(InstanceIds=[iid])
    assert wait_for(lambda: row(fast, iid).attempts >= models.IMPAIRED_AFTER, 10)
    status = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)[
        "InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "impaired"
    assert status["InstanceState"]["Name"] == "stopping"
    # The host heals (no more injected failures): the next attempt goes through.
    wait_state(ec2, iid, "stopped", timeout=10)
    status = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)[
        "InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "not-applicable"
    ec2.terminate_instances(InstanceIds=[iid])


def test_init_exit_inside_stops_the_instance(quick: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    iid = run_one(ec2, image_id)
    wait_state(ec2, iid, "running")
    quick.agent.init_exits(iid)
    wait_state(ec2, iid, "stopped")
    reason = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "StateReason"]
    assert reason["Code"] == "Client.InstanceInitiatedShutdown"
    ec2.terminate_instances(InstanceIds=[iid])


def test_reboot_inside_boots_again_and_stays_running(quick: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    """A guest that says it rebooted (the systemd image's shutdown hook) boots again."""
    iid = run_one(ec2, image_id)
    wait_state(ec2, iid, "running")
    boots = quick.agent.boots[iid]
    quick.agent.init_exits(iid, reason="reboot")
    assert wait_for(lambda: quick.agent.boots[iid] == boots + 1 and quick.agent.alive(iid), 10)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "running"
    assert "StateReason" not in inst or inst["StateReason"]["Code"] != (
        "Client.InstanceInitiatedShutdown")
    ec2.terminate_instances(InstanceIds=[iid])


def test_vanished_instance_is_repaired(quick: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    iid = run_one(ec2, image_id)
    wait_state(ec2, iid, "running")
    quick.agent.vanish(iid)
    assert wait_for(lambda: quick.agent.alive(iid), 5), "not relaunched"
    assert quick.agent.boots[iid] == 2
    assert state_of(ec2, iid) == "running"
    ec2.terminate_instances(InstanceIds=[iid])


def test_container_behind_a_stopped_row_is_stopped(quick: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    iid = run_one(ec2, image_id)
    wait_state(ec2, iid, "running")
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    spec = quick.agent.last_spec[iid]
    quick.agent.plant(spec)  # someone started it again behind the API's back
    assert wait_for(lambda: not quick.agent.alive(iid), 5)
    assert iid in quick.agent.disks, "stopping keeps the disk"
    ec2.terminate_instances(InstanceIds=[iid])


def test_host_objects_no_row_owns_are_swept(quick: FastCloud) -> None:
    vpc = VpcNetwork("vpc-00000000000000bad", 4000, "10.9.0.0/16", ("10.9.0.0/24",))
    spec = InstanceSpec("i-0000000000000dead", 999, vpc, "10.9.0.0/24", "10.9.0.9", None,
                        "ip-10-9-0-9", Limits(1, 512, 512), 8, Path("/nonexistent"), None)
    quick.agent.plant(spec)
    assert wait_for(lambda: "i-0000000000000dead" not in quick.agent.instances(), 5)
    assert "i-0000000000000dead" not in quick.agent.disks


def test_firewall_written_by_the_launch_is_not_written_again_and_rule_changes_reach_it(
        fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    gid = ec2.create_security_group(GroupName="t-fw-loop", Description="fw")["GroupId"]
    res = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            SecurityGroupIds=[gid])
    iid = res["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    fast.cloud.firewall_controller.sync()  # a pass after the launch: nothing new to write
    assert attempts_of(fast, "apply_firewalls", iid) == 0
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    def opened() -> bool:
        firewall = fast.agent.instances_[iid].firewall
        return firewall is not None and any(r.from_port == 8080 for r in firewall.ingress)
    assert wait_for(opened, 5)
    assert attempts_of(fast, "apply_firewalls", iid) == 1
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    ec2.delete_security_group(GroupId=gid)
