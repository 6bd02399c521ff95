"""Elastic IPs on the host's address map, and what an unreachable host means for the API."""

from __future__ import annotations

import threading

from gureum.errors import AgentUnavailable
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state


def private_ip(ec2, iid: str) -> str:  # noqa: ANN001
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "PrivateIpAddress"]


def test_eip_moves_and_survives_an_unreachable_agent(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image_id, MinCount=2, MaxCount=2)["Instances"]]
    for iid in ids:
        wait_state(ec2, iid, "running")
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=ids[0])
    assert fast.agent.public_ips[eip["PublicIp"]][0] == private_ip(ec2, ids[0])

    # The agent is away while the address moves: the call still succeeds (the store
    # holds the promise) and the host follows once the agent answers again.
    fast.agent.fail_next("sync_public_ips", AgentUnavailable("agent restarting"))
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=ids[1],
                          AllowReassociation=True)
    assert wait_for(lambda: fast.agent.public_ips.get(eip["PublicIp"], [None])[0]
                    == private_ip(ec2, ids[1]), 10)

    fast.agent.fail_next("console_tail", AgentUnavailable("agent restarting"))
    assert "Output" not in ec2.get_console_output(InstanceId=ids[1])  # no output, no 500

    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")
    ec2.release_address(AllocationId=eip["AllocationId"])
    assert eip["PublicIp"] not in fast.agent.public_ips


def test_a_map_read_while_a_launch_began_is_read_again(fast: FastCloud,  # noqa: ANN001
                                                        monkeypatch) -> None:
    """The network pass maps exactly what its store read named; a launch maps its own
    address. A read during which a launch began may miss that launch's address: it is
    read again, and while launches keep beginning the pass leaves the map to the next."""
    network, instances = fast.cloud.network_controller, fast.cloud.controller
    assert network is not None and instances is not None
    reads: list[int] = []
    synced: list[dict] = []
    real_read, real_sync = network.public_ips_by_host, fast.agent.sync_public_ips
    me = threading.get_ident()  # the loop's own passes may run meanwhile: not counted

    def racing_read(launches_during: int):  # noqa: ANN202
        def read():  # noqa: ANN202
            if threading.get_ident() == me:
                reads.append(1)
                if len(reads) <= launches_during:
                    instances.mapping()  # a launch began while this read ran
            return real_read()
        return read

    def sync(wanted: dict) -> None:
        if threading.get_ident() == me:
            synced.append(wanted)
        else:
            real_sync(wanted)

    monkeypatch.setattr(fast.agent, "sync_public_ips", sync)
    monkeypatch.setattr(network, "public_ips_by_host", racing_read(1))
    network.sync_public_ips()
    assert len(reads) == 2 and len(synced) == 1
    reads.clear()
    synced.clear()
    monkeypatch.setattr(network, "public_ips_by_host", racing_read(10))
    network.sync_public_ips()
    assert len(reads) == 3 and synced == []  # the next pass (woken now) maps
