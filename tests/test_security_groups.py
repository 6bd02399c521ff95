"""Security groups: API behaviour as on AWS, and real packets through real nftables."""

from __future__ import annotations

import socket
import time

import pytest
from botocore.exceptions import ClientError
from helpers import ssh, wait_for, wait_state

from gureum.testing import tcp_open

SERVE = "cd /tmp; nohup python3 -m http.server {port} </dev/null >/dev/null 2>&1 &"


def code_of(call, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"]


@pytest.fixture
def group(ec2):  # noqa: ANN001, ANN201
    made: list[str] = []

    def _make(name: str) -> str:
        gid = ec2.create_security_group(GroupName=name, Description=f"test {name}")["GroupId"]
        made.append(gid)
        return gid

    yield _make
    for gid in reversed(made):
        for _ in range(60):  # instances using it may still be terminating
            try:
                ec2.delete_security_group(GroupId=gid)
                break
            except ClientError as err:
                if err.response["Error"]["Code"] != "DependencyViolation":
                    raise
                time.sleep(0.5)


def test_default_group_and_api_errors(ec2, group):
    groups = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    default = groups[0]
    assert default["GroupName"] == "default" and default["VpcId"].startswith("vpc-")
    assert {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "UserIdGroupPairs": [],
            "Ipv6Ranges": [], "PrefixListIds": []} in default["IpPermissionsEgress"]
    gid = group("t-api")
    assert code_of(ec2.create_security_group, GroupName="t-api", Description="x") == "InvalidGroup.Duplicate"
    assert code_of(ec2.create_security_group, GroupName="default", Description="x") == "InvalidGroup.Reserved"
    assert code_of(ec2.delete_security_group, GroupId=default["GroupId"]) == "CannotDelete"
    assert code_of(ec2.describe_security_groups, GroupIds=["sg-0123456789abcdef0"]) == "InvalidGroup.NotFound"
    assert code_of(ec2.describe_security_groups, GroupIds=["bogus"]) == "InvalidGroupId.Malformed"
    perm = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    res = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    assert res["Return"] and res["SecurityGroupRules"][0]["SecurityGroupRuleId"].startswith("sgr-")
    assert code_of(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[perm]) == "InvalidPermission.Duplicate"
    assert code_of(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]) == "InvalidParameterValue"
    assert code_of(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "300.0.0.0/8"}]}]) == "InvalidParameterValue"
    assert code_of(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}]) == "InvalidGroup.NotFound"
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert {(r["IsEgress"], r["IpProtocol"], r.get("CidrIpv4")) for r in rules} == {
        (False, "tcp", "10.0.0.0/8"), (True, "-1", "0.0.0.0/0")}
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    assert code_of(ec2.revoke_security_group_ingress, GroupId=gid, IpPermissions=[perm]) == "InvalidPermission.NotFound"
    other = group("t-referrer")
    ec2.authorize_security_group_ingress(GroupId=other, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gid}]}])
    assert code_of(ec2.delete_security_group, GroupId=gid) == "InvalidGroup.InUse"
    ec2.revoke_security_group_ingress(GroupId=other, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gid}]}])


def test_ingress_opens_and_closes_a_port_within_a_second(ec2, group, launch, key_pair):
    gid = group("t-web")
    inst = launch(SecurityGroupIds=[gid, ec2.describe_security_groups(
        GroupNames=["default"])["SecurityGroups"][0]["GroupId"]])["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    ssh(key_pair[1], ip, SERVE.format(port=8080))
    time.sleep(0.5)
    assert not tcp_open(ip, 8080)  # default deny
    start = time.monotonic()
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert wait_for(lambda: tcp_open(ip, 8080), 1.0, interval=0.01)
    opened = time.monotonic() - start
    held = socket.create_connection((ip, 8080), timeout=2)  # an established connection...
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert wait_for(lambda: not tcp_open(ip, 8080), 1.0, interval=0.01)
    held.sendall(b"GET / HTTP/1.0\r\n\r\n")  # ...stays up after the revoke (conntrack)
    held.settimeout(3)
    assert held.recv(12).startswith(b"HTTP/1.0 200")
    held.close()
    assert opened < 1.0


def test_group_members_talk_and_outsiders_are_refused(ec2, group, launch, key_pair):
    members = group("t-members")
    ec2.authorize_security_group_ingress(GroupId=members, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": members}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    outsiders = group("t-outsiders")
    ec2.authorize_security_group_ingress(GroupId=outsiders, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    a = launch(SecurityGroupIds=[members])["Instances"][0]
    b = launch(SecurityGroupIds=[members])["Instances"][0]
    c = launch(SecurityGroupIds=[outsiders])["Instances"][0]
    for inst in (a, b, c):
        wait_state(ec2, inst["InstanceId"], "running")
    ssh(key_pair[1], b["PublicIpAddress"], SERVE.format(port=9000))
    probe = f"curl -s -o /dev/null -m 2 -w '%{{http_code}}' http://{b['PrivateIpAddress']}:9000/ || true"
    assert wait_for(lambda: ssh(key_pair[1], a["PublicIpAddress"], probe).stdout == "200", 5)
    assert ssh(key_pair[1], c["PublicIpAddress"], probe).stdout != "200"
    # Moving C into the group lets it in, on the running instance, without a restart.
    ec2.modify_instance_attribute(InstanceId=c["InstanceId"], Groups=[members])
    assert wait_for(lambda: ssh(key_pair[1], c["PublicIpAddress"], probe).stdout == "200", 5)
    ec2.modify_instance_attribute(InstanceId=c["InstanceId"], Groups=[outsiders])


def test_egress_rules_are_enforced_and_imds_stays_reachable(ec2, group, launch, key_pair):
    gid = group("t-no-egress")
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    target = launch()["Instances"][0]
    inst = launch(SecurityGroupIds=[gid])["Instances"][0]
    wait_state(ec2, target["InstanceId"], "running")
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    check = f"timeout 2 bash -c 'echo > /dev/tcp/{target['PrivateIpAddress']}/22' && echo OPEN || echo CLOSED"
    assert ssh(key_pair[1], ip, check).stdout.strip() == "OPEN"
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert wait_for(lambda: ssh(key_pair[1], ip, check).stdout.strip() == "CLOSED", 5)
    imds = "curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id"
    assert ssh(key_pair[1], ip, imds).stdout == inst["InstanceId"]


def test_instance_cannot_change_its_own_firewall(ec2, launch, key_pair):
    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    out = ssh(key_pair[1], ip, "sudo -n python3 -c 'import socket; socket.socket(socket.AF_NETLINK, "
              "socket.SOCK_RAW, 12).bind((0, 0))' 2>&1; sudo -n ip link set eth0 down 2>&1; echo done",
              check=False).stdout
    assert "done" in out and wait_state(ec2, inst["InstanceId"], "running")
    assert tcp_open(ip, 22)
