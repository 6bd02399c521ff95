"""Controllers wake from what a commit changed (the store's after-commit hook), not from
handlers remembering to call them: changes reach the host well before the periodic pass."""

from __future__ import annotations

from gureum.controllers.firewall import RESYNC_SECONDS
from gureum.controllers.network import RESYNC_SECONDS as NETWORK_RESYNC
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, wait_state


def test_rule_change_reaches_the_host_before_the_resync(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    group = ec2.create_security_group(GroupName="wake-test", Description="x")["GroupId"]
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                            SecurityGroupIds=[group])["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
        "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}])

    def applied() -> bool:
        fw = fast.agent.instances_[iid].firewall
        return fw is not None and any(r.from_port == 8080 for r in fw.ingress)

    assert wait_for(applied, RESYNC_SECONDS / 2, 0.02)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    ec2.delete_security_group(GroupId=group)


def test_commit_names_the_tables_it_changed(fast: FastCloud, ec2) -> None:  # noqa: ANN001
    seen: list[set[str]] = []
    fast.cloud.store.on_commit(seen.append)
    vpc = ec2.create_vpc(CidrBlock="10.55.0.0/16")["Vpc"]["VpcId"]
    ec2.delete_vpc(VpcId=vpc)
    assert any("vpcs" in tables for tables in seen)
    fast.cloud.store._commit_listeners.remove(seen.append)


def test_commit_names_the_instances_it_touched(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    """An instance's own row, an interface moved between instances (both), a tag; a bulk
    statement nobody noted makes them unknown."""
    from sqlalchemy import update

    from gureum.store import models

    seen: list[tuple[set[str], frozenset[str] | None]] = []

    def hear(tables: set[str], instances: frozenset[str] | None) -> None:
        seen.append((tables, instances))

    store = fast.cloud.store
    store.on_commit_instances(hear)
    try:
        inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
        iid = inst["InstanceId"]
        assert any(instances and iid in instances for _, instances in seen)
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "k", "Value": "v"}])
        assert ({"tags"}, frozenset({iid})) in seen
        eni_id = ec2.create_network_interface(
            SubnetId=inst["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
        with store.write() as s:
            s.get(models.NetworkInterface, eni_id).instance_id = "i-0000000000000000b"
        with store.write() as s:
            s.get(models.NetworkInterface, eni_id).instance_id = "i-0000000000000000c"
        assert seen[-1][1] == frozenset({"i-0000000000000000b", "i-0000000000000000c"})
        with store.write() as s:
            s.get(models.NetworkInterface, eni_id).instance_id = None
            s.execute(update(models.Tag).where(models.Tag.key == "k").values(value="w"))
        assert seen[-1][1] is None
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")
    finally:
        store._instance_listeners.remove(hear)


def test_interfaces_alone_reach_the_network_pass_only_through_what_names_them(
        fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    """Every launch writes an interface: that alone changes no router and no public
    address (the launch maps its own), unless an Elastic IP or a route names an interface."""
    network = fast.cloud.network_controller
    # Passes woken by interfaces alone (no other change pending when they began): did
    # they write the public map?
    passes: list[bool] = []
    real = network.sync

    def maps() -> int:
        return sum(1 for call in fast.agent.calls if call[0] == "sync_public_ips")

    def counted() -> None:
        before, interfaces_only = maps(), network.woken and not network._full
        real()
        if interfaces_only:
            passes.append(maps() > before)

    def touch_interface(eni_id: str, description: str) -> list[bool]:
        assert wait_for(lambda: not network._full, 5, 0.01)  # other changes' pass began
        seen = len(passes)
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id,
                                               Description={"Value": description})
        assert wait_for(lambda: len(passes) > seen, 5, 0.01)
        return passes[seen:]

    network.sync = counted  # type: ignore[method-assign]
    network.resync_seconds = 60.0  # no timer pass, no whole pass for staleness meanwhile
    inst = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
    eni_id = ec2.create_network_interface(
        SubnetId=inst["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    try:
        wait_state(ec2, inst["InstanceId"], "running")
        assert not any(touch_interface(eni_id, "alone")), "nothing names it: no pass"
        network._full_at -= 60.0  # the last whole pass is a resync period old
        assert all(touch_interface(eni_id, "stale")), "a whole pass at least every resync"
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=inst["InstanceId"],
                                     DeviceIndex=1)
        ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=eni_id)
        assert all(touch_interface(eni_id, "named")), "an Elastic IP names it: a whole pass"
    finally:
        network.sync = real  # type: ignore[method-assign]
        network.resync_seconds = NETWORK_RESYNC
        address = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        if address.get("AssociationId"):
            ec2.disassociate_address(AssociationId=address["AssociationId"])
        ec2.release_address(AllocationId=allocation)
        ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
        wait_state(ec2, inst["InstanceId"], "terminated")
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
