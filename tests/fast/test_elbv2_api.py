"""ELBv2's API through boto3: resources, their validation and AWS's error codes."""

from __future__ import annotations

import pytest
from helpers import error_code as code

from gureum.testing_inprocess import FastCloud, wait_state


@pytest.fixture(scope="module")
def elb(fast: FastCloud):  # noqa: ANN201
    return fast.client("elbv2")


@pytest.fixture(scope="module")
def subnet(ec2) -> str:  # noqa: ANN001
    return ec2.describe_subnets()["Subnets"][0]["SubnetId"]


@pytest.fixture(scope="module")
def vpc(ec2) -> str:  # noqa: ANN001
    return ec2.describe_vpcs()["Vpcs"][0]["VpcId"]


def test_load_balancer_lifecycle(elb, subnet, vpc) -> None:  # noqa: ANN001
    lb = elb.create_load_balancer(Name="web", Subnets=[subnet], Tags=[
        {"Key": "app", "Value": "shop"}])["LoadBalancers"][0]
    assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing"
    assert lb["State"]["Code"] in ("provisioning", "active")
    assert lb["DNSName"].startswith("web-") and lb["VpcId"] == vpc
    assert lb["SecurityGroups"], "an ALB gets the VPC's default group"
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]
    assert address["IpAddress"].startswith("127.")
    arn = lb["LoadBalancerArn"]
    assert code(elb.create_load_balancer, Name="web", Subnets=[subnet]) == \
        "DuplicateLoadBalancerName"
    assert elb.describe_load_balancers(Names=["web"])["LoadBalancers"][0]["LoadBalancerArn"] == arn
    assert elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"] == [
        {"Key": "app", "Value": "shop"}]
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    assert code(elb.delete_load_balancer, LoadBalancerArn=arn) == "OperationNotPermitted"
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)
    assert code(elb.describe_load_balancers, LoadBalancerArns=[arn]) == "LoadBalancerNotFound"


def test_load_balancer_errors(elb, subnet) -> None:  # noqa: ANN001
    assert code(elb.create_load_balancer, Name="-bad", Subnets=[subnet]) == "ValidationError"
    assert code(elb.create_load_balancer, Name="x" * 33, Subnets=[subnet]) == "ValidationError"
    assert code(elb.create_load_balancer, Name="nosubnet",
                Subnets=["subnet-0123456789abcdef0"]) == "SubnetNotFound"
    assert code(elb.create_load_balancer, Name="badsg", Subnets=[subnet],
                SecurityGroups=["sg-0123456789abcdef0"]) == "InvalidSecurityGroup"
    assert code(elb.describe_load_balancers, Names=["nobody"]) == "LoadBalancerNotFound"
    assert code(elb.modify_load_balancer_attributes,
                LoadBalancerArn="arn:aws:elasticloadbalancing:gureum-1:000000000000:"
                                "loadbalancer/app/x/0123456789abcdef",
                Attributes=[{"Key": "a", "Value": "b"}]) == "LoadBalancerNotFound"


def test_target_groups_listeners_and_targets(elb, ec2, subnet, vpc, image_id) -> None:  # noqa: ANN001
    tg = elb.create_target_group(Name="web-tg", Protocol="HTTP", Port=8080, VpcId=vpc,
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2,
                                 Matcher={"HttpCode": "200-299"})["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/" and tg["Matcher"] == {"HttpCode": "200-299"}
    again = elb.create_target_group(Name="web-tg", Protocol="HTTP", Port=8080, VpcId=vpc,
                                    HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2,
                                    Matcher={"HttpCode": "200-299"})["TargetGroups"][0]
    assert again["TargetGroupArn"] == tg["TargetGroupArn"], "same settings: idempotent"
    assert code(elb.create_target_group, Name="web-tg", Protocol="HTTP", Port=9090,
                VpcId=vpc) == "DuplicateTargetGroupName"
    assert code(elb.create_target_group, Name="t2", Protocol="HTTP", Port=80, VpcId=vpc,
                HealthCheckTimeoutSeconds=30, HealthCheckIntervalSeconds=10) == "ValidationError"
    assert code(elb.create_target_group, Name="t3", Protocol="HTTP", Port=80, VpcId=vpc,
                Matcher={"HttpCode": "600"}) == "ValidationError"
    arn = tg["TargetGroupArn"]

    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    assert code(elb.register_targets, TargetGroupArn=arn,
                Targets=[{"Id": "i-0123456789abcdef0"}]) == "InvalidTarget"
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert health[0]["TargetHealth"]["Reason"] == "Target.NotInUse"
    assert health[0]["Target"] == {"Id": iid, "Port": 8080, "AvailabilityZone": "gureum-1a"}
    other = elb.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": "i-0aaaaaaaaaaaaaaaa"}])
    assert other["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.NotRegistered"

    lb = elb.create_load_balancer(Name="web2", Subnets=[subnet])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])[
        "Listeners"][0]
    assert listener["DefaultActions"][0]["TargetGroupArn"] == arn
    assert code(elb.create_listener, LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP",
                Port=80, DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                    "StatusCode": "404"}}]) == "DuplicateListener"
    assert code(elb.create_listener, LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP",
                Port=81, DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}]) == \
        "UnsupportedProtocol"
    assert code(elb.delete_target_group, TargetGroupArn=arn) == "ResourceInUse"
    assert elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"][0][
        "LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    reason = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"][0][
        "TargetHealth"]
    assert reason["State"] in ("initial", "healthy", "unhealthy")

    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    reason = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"][0][
        "TargetHealth"]
    assert reason["Reason"] == "Target.InvalidState"

    elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    reason = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"][0][
        "TargetHealth"]
    assert reason == {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                      "Description": "Target deregistration is in progress"}
    assert code(elb.deregister_targets, TargetGroupArn=arn,
                Targets=[{"Id": "i-0bbbbbbbbbbbbbbbb"}]) == "InvalidTarget"
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=arn)
    ec2.terminate_instances(InstanceIds=[iid])


def test_data_plane_follows_the_store(fast: FastCloud, elb, ec2, subnet, vpc, image_id) -> None:  # noqa: ANN001
    from gureum.testing import wait_for

    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image_id, MinCount=2,
                                                       MaxCount=2)["Instances"]]
    for iid in ids:
        wait_state(ec2, iid, "running")
    tg = elb.create_target_group(Name="plane", Protocol="HTTP", Port=8000, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="plane", Subnets=[subnet])["LoadBalancers"][0]
    lb_id = lb["LoadBalancerArn"].rsplit("/", 1)[-1]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in ids])

    def states() -> list[str]:
        return [d["TargetHealth"]["State"] for d in
                elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]

    assert wait_for(lambda: states() == ["healthy", "healthy"], 5)
    assert elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])[
        "LoadBalancers"][0]["State"]["Code"] == "active"
    spec = fast.agent.lbs[lb_id]
    assert [s.port for s in spec.backends[0].servers] == [8000, 8000]
    public = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    assert fast.agent.public_ips[public][0] == spec.private_ip
    assert spec.firewall is not None, "an ALB's security groups become its firewall"

    fast.agent.down.add(f"{ids[0]}_8000")
    assert wait_for(lambda: sorted(states()) == ["healthy", "unhealthy"], 5)
    reason = [d["TargetHealth"] for d in elb.describe_target_health(TargetGroupArn=tg)[
        "TargetHealthDescriptions"] if d["Target"]["Id"] == ids[0]][0]
    assert reason["Reason"] == "Target.ResponseCodeMismatch"

    fast.agent.remove_load_balancer(lb_id)  # the proxy died: repaired
    assert wait_for(lambda: fast.agent.lb_running.get(lb_id), 5)

    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    assert wait_for(lambda: lb_id not in fast.agent.lbs, 5)
    assert public not in fast.agent.public_ips
    elb.delete_target_group(TargetGroupArn=tg)
    ec2.terminate_instances(InstanceIds=ids)


def test_rule_validation(fast: FastCloud, elb, subnet, vpc) -> None:  # noqa: ANN001
    from gureum.testing import wait_for

    tg = elb.create_target_group(Name="rules-tg", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="rules", Subnets=[subnet])["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                                       "StatusCode": "404"}}])["Listeners"][0]["ListenerArn"]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    path = [{"Field": "path-pattern", "Values": ["/api/*"]}]
    rule = elb.create_rule(ListenerArn=listener, Priority=7, Conditions=path, Actions=forward)[
        "Rules"][0]
    assert rule["Conditions"][0]["PathPatternConfig"] == {"Values": ["/api/*"]}
    assert code(elb.create_rule, ListenerArn=listener, Priority=7, Conditions=path,
                Actions=forward) == "PriorityInUse"
    assert code(elb.create_rule, ListenerArn=listener, Priority=50001, Conditions=path,
                Actions=forward) == "ValidationError"
    assert code(elb.create_rule, ListenerArn=listener, Priority=8, Conditions=[
        {"Field": "cookie", "Values": ["x"]}], Actions=forward) == "ValidationError"
    assert code(elb.create_rule, ListenerArn=listener, Priority=8, Conditions=[
        {"Field": "path-pattern", "Values": [f"/{i}" for i in range(6)]}],
        Actions=forward) == "ValidationError"
    assert code(elb.create_rule, ListenerArn=listener, Priority=8, Conditions=[
        {"Field": "source-ip", "SourceIpConfig": {"Values": ["not-a-cidr"]}}],
        Actions=forward) == "ValidationError"
    assert code(elb.create_rule, ListenerArn=listener + "0", Priority=8, Conditions=path,
                Actions=forward) == "ListenerNotFound"
    assert code(elb.delete_rule, RuleArn=rule["RuleArn"] + "0") == "RuleNotFound"
    rules = elb.describe_rules(ListenerArn=listener)["Rules"]
    assert [r["IsDefault"] for r in rules] == [False, True]
    assert code(elb.delete_rule, RuleArn=rules[1]["RuleArn"]) == "OperationNotPermitted"
    lb_id = lb["LoadBalancerArn"].rsplit("/", 1)[-1]
    # The load balancer may reach the host before its listener does (seen on PostgreSQL).
    assert wait_for(lambda: lb_id in fast.agent.lbs and fast.agent.lbs[lb_id].frontends
                    and fast.agent.lbs[lb_id].frontends[0].rules, 5)
    front = fast.agent.lbs[lb_id].frontends[0]
    assert front.rules[0].conditions[0].values == ("/api/*",)
    assert front.default.kind == "fixed-response" and front.default.status == 404
    elb.delete_rule(RuleArn=rule["RuleArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=tg)


def test_https_listener_validation(fast: FastCloud, elb, subnet, vpc) -> None:  # noqa: ANN001
    from gureum.testing import wait_for
    from gureum.testing_certs import self_signed

    acm = fast.client("acm")
    cert, key = self_signed("tls.example")
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    tg = elb.create_target_group(Name="tls-tg", Protocol="HTTPS", Port=8443, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="tls", Subnets=[subnet])["LoadBalancers"][0]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    base = {"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "HTTPS", "Port": 443,
            "DefaultActions": forward}
    assert code(elb.create_listener, **base) == "ValidationError"
    assert code(elb.create_listener, **base, Certificates=[{"CertificateArn": arn + "0"}]) == \
        "CertificateNotFound"
    assert code(elb.create_listener, **base, Certificates=[{"CertificateArn": arn}],
                SslPolicy="MyPolicy") == "SSLPolicyNotFound"
    listener = elb.create_listener(**base, Certificates=[{"CertificateArn": arn}])["Listeners"][0]
    assert listener["Certificates"] == [{"CertificateArn": arn}]
    lb_id = lb["LoadBalancerArn"].rsplit("/", 1)[-1]
    assert wait_for(lambda: lb_id in fast.agent.lbs and fast.agent.lbs[lb_id].frontends, 5)
    pem = fast.agent.lbs[lb_id].frontends[0].pem
    assert pem is not None and "PRIVATE KEY" in pem and "CERTIFICATE" in pem
    assert code(acm.delete_certificate, CertificateArn=arn) == "ResourceInUseException"
    # More certificates, chosen by SNI; the default stays first and can't be removed.
    other, other_key = self_signed("shop.example")
    second = acm.import_certificate(Certificate=other, PrivateKey=other_key)["CertificateArn"]
    pending = acm.request_certificate(DomainName="pending.example")["CertificateArn"]
    lst = listener["ListenerArn"]
    assert code(elb.add_listener_certificates, ListenerArn=lst,
                Certificates=[{"CertificateArn": pending}]) == "InvalidConfigurationRequest"
    assert elb.add_listener_certificates(ListenerArn=lst, Certificates=[
        {"CertificateArn": second}])["Certificates"] == [
        {"CertificateArn": second, "IsDefault": False}]
    assert elb.describe_listener_certificates(ListenerArn=lst)["Certificates"] == [
        {"CertificateArn": arn, "IsDefault": True}, {"CertificateArn": second, "IsDefault": False}]
    assert elb.describe_listeners(ListenerArns=[lst])["Listeners"][0]["Certificates"] == [
        {"CertificateArn": arn}]
    assert wait_for(lambda: len(fast.agent.lbs[lb_id].frontends[0].sni_pems) == 1, 5)
    assert code(elb.remove_listener_certificates, ListenerArn=lst,
                Certificates=[{"CertificateArn": arn}]) == "OperationNotPermitted"
    assert code(acm.delete_certificate, CertificateArn=second) == "ResourceInUseException"
    elb.remove_listener_certificates(ListenerArn=lst, Certificates=[{"CertificateArn": second}])
    assert wait_for(lambda: not fast.agent.lbs[lb_id].frontends[0].sni_pems, 5)
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    for gone in (arn, second, pending):
        acm.delete_certificate(CertificateArn=gone)
    elb.delete_target_group(TargetGroupArn=tg)


def test_publishing_on_the_host_address(fast: FastCloud, elb, subnet, vpc) -> None:  # noqa: ANN001
    from gureum.testing import wait_for

    fast.cloud.config.publish_address = "203.0.113.1"
    try:
        tg = elb.create_target_group(Name="pub-tg", Protocol="HTTP", Port=80, VpcId=vpc)[
            "TargetGroups"][0]["TargetGroupArn"]
        one = elb.create_load_balancer(Name="pub-one", Subnets=[subnet])["LoadBalancers"][0]
        two = elb.create_load_balancer(Name="pub-two", Subnets=[subnet])["LoadBalancers"][0]
        fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]
        elb.create_listener(LoadBalancerArn=one["LoadBalancerArn"], Protocol="HTTP", Port=8081,
                            DefaultActions=fixed)
        assert code(elb.create_listener, LoadBalancerArn=two["LoadBalancerArn"], Protocol="HTTP",
                    Port=8081, DefaultActions=fixed) == "InvalidConfigurationRequest"
        fast.agent.busy_ports.add(8082)
        assert code(elb.create_listener, LoadBalancerArn=two["LoadBalancerArn"], Protocol="HTTP",
                    Port=8082, DefaultActions=fixed) == "InvalidConfigurationRequest"
        assert wait_for(lambda: "8081" in fast.agent.published, 5)
        private = one["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["PrivateIPv4Address"]
        assert fast.agent.published["8081"][:2] == [private, 8081]
        assert elb.describe_listeners(LoadBalancerArn=two["LoadBalancerArn"])["Listeners"] == [], \
            "a refused listener leaves nothing"
        elb.delete_load_balancer(LoadBalancerArn=one["LoadBalancerArn"])
        assert wait_for(lambda: "8081" not in fast.agent.published, 5)
        elb.delete_load_balancer(LoadBalancerArn=two["LoadBalancerArn"])
        elb.delete_target_group(TargetGroupArn=tg)
    finally:
        fast.cloud.config.publish_address = ""
        fast.agent.busy_ports.clear()


def test_a_load_balancer_keeps_its_subnet_and_groups(elb, ec2, vpc) -> None:  # noqa: ANN001
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="lb-dep", Description="x", VpcId=vpc)["GroupId"]
    lb = elb.create_load_balancer(Name="dep", Subnets=[subnet], Scheme="internal",
                                  SecurityGroups=[group])["LoadBalancers"][0]["LoadBalancerArn"]
    assert code(ec2.delete_subnet, SubnetId=subnet) == "DependencyViolation"
    assert code(ec2.delete_security_group, GroupId=group) == "DependencyViolation"
    elb.delete_load_balancer(LoadBalancerArn=lb)
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet)


def test_one_subnet_per_zone(elb, ec2, vpc, subnet) -> None:  # noqa: ANN001
    second = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.201.0/24")["Subnet"]["SubnetId"]
    try:
        assert code(elb.create_load_balancer, Name="two-subnets", Subnets=[subnet, second]) == \
            "InvalidConfigurationRequest"
    finally:
        ec2.delete_subnet(SubnetId=second)


def test_bad_page_tokens_get_each_services_own_code(fast) -> None:  # noqa: ANN001
    from helpers import error_code

    assert error_code(fast.client("elbv2").describe_load_balancers, Marker="!!") == \
        "ValidationError"
    assert error_code(fast.client("acm").list_certificates, NextToken="!!") == \
        "InvalidArgsException"
    assert error_code(fast.client("autoscaling").describe_auto_scaling_groups,
                      NextToken="!!") == "InvalidNextToken"
    assert error_code(fast.client("cloudwatch").list_metrics, NextToken="!!") == \
        "InvalidNextToken"
    assert error_code(fast.client().describe_instances, NextToken="!!") == \
        "InvalidPaginationToken"
