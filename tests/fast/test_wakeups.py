"""Controllers wake from what a commit changed (the store's after-commit hook), not from
handlers remembering to call them: changes reach the host well before the periodic pass."""

from __future__ import annotations

from gureum.controllers.firewall import RESYNC_SECONDS
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
