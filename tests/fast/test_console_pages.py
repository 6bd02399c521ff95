"""The console's other pages against the in-process cloud: volumes and snapshots, load
balancers with target health and graphs, Auto Scaling groups with their activities,
alarms, CPU graphs, deployed apps."""

from __future__ import annotations

import base64
import re

import pytest
from test_console import field_error, signed_in

from gureum.console.charts import line_chart
from gureum.console.testing import ConsoleClient
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud


@pytest.fixture(scope="module")
def console(fast: FastCloud) -> ConsoleClient:
    return signed_in(fast)


def test_volumes_and_snapshots(console, ec2, image_id):
    console.get("/console/volumes")
    bad = console.post("/console/volumes", {"size": "0"})
    assert bad.status == 400 and field_error(bad.text, "size").startswith("InvalidParameterValue")
    made = console.post("/console/volumes", {"size": "1"})
    assert made.status == 303
    volume_id = re.search(r"vol-[0-9a-f]+", console.get("/console/volumes").text.split(
        "Creating ")[1]).group(0)
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0][
        "State"] == "available", 10)
    instance_id = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    assert wait_for(lambda: f'value="{instance_id}"' in console.get("/console/volumes").text, 10)
    assert console.post(f"/console/volumes/{volume_id}/attach", {
        "instance_id": instance_id, "device": "/dev/sdf"}).status == 303
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0][
        "State"] == "in-use", 10)
    assert f"/console/volumes/{volume_id}/detach" in console.get("/console/volumes").text
    console.post(f"/console/volumes/{volume_id}/detach", {"confirm": "yes"})
    assert wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0][
        "State"] == "available", 10)
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert console.post(f"/console/volumes/{volume_id}/snapshot").status == 303
    (snap,) = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [volume_id]}])[
        "Snapshots"]
    assert snap["SnapshotId"] in console.get("/console/volumes").text
    assert wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])[
        "Snapshots"][0]["State"] == "completed", 10)
    assert console.post(f"/console/snapshots/{snap['SnapshotId']}/delete",
                        {"confirm": "yes"}).status == 303
    assert console.post(f"/console/volumes/{volume_id}/delete", {"confirm": "yes"}).status == 303
    assert wait_for(lambda: not ec2.describe_volumes(Filters=[
        {"Name": "volume-id", "Values": [volume_id]}])["Volumes"], 10)


def test_load_balancer_with_target_health_and_graphs(fast, console, ec2, image_id):
    elb = fast.client("elbv2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    lb = elb.create_load_balancer(Name="console-lb", Subnets=[subnet["SubnetId"]])[
        "LoadBalancers"][0]
    tg = elb.create_target_group(Name="console-tg", Protocol="HTTP", Port=8080,
                                 VpcId=subnet["VpcId"])["TargetGroups"][0]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward",
                                         "TargetGroupArn": tg["TargetGroupArn"]}])
    instance_id = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    try:
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": instance_id}])
        assert "console-lb" in console.get("/console/load-balancers").text
        page = console.get("/console/load-balancers/console-lb")
        assert page.status == 200 and "HTTP:80" in page.text and instance_id in page.text
        health = console.get("/console/load-balancers/console-lb/health").text
        assert re.search(r'data-health="(initial|healthy|unhealthy|unused)"', health)
        graphs = console.get("/console/load-balancers/console-lb/graphs").text
        assert graphs.count("<svg") == 2 and "Requests" in graphs and "Latency" in graphs
        assert console.get("/console/load-balancers/nope").status == 400
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def test_auto_scaling_group_with_activities_and_capacity(fast, console, ec2, image_id):
    asg = fast.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="console-asg", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    asg.create_auto_scaling_group(AutoScalingGroupName="console-asg", MinSize=0, MaxSize=2,
                                  DesiredCapacity=1, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateName": "console-asg"},
                                  Tags=[{"Key": "gureum:app", "Value": "console-app",
                                         "PropagateAtLaunch": False},
                                        {"Key": "gureum:release", "Value": "v1",
                                         "PropagateAtLaunch": False}])
    try:
        assert "console-asg" in console.get("/console/auto-scaling").text
        assert wait_for(lambda: "Launching a new EC2 instance" in console.get(
            "/console/auto-scaling/console-asg/live").text, 15)
        page = console.get("/console/auto-scaling/console-asg")
        too_many = console.post("/console/auto-scaling/console-asg/capacity", {"desired": "5"})
        assert too_many.status == 400
        assert field_error(too_many.text, "desired").startswith("ValidationError")
        assert console.post("/console/auto-scaling/console-asg/capacity",
                            {"desired": "0"}).status == 303
        assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["console-asg"])[
            "AutoScalingGroups"][0]["DesiredCapacity"] == 0
        assert page.status == 200
        apps = console.get("/console/apps").text
        assert "console-app" in apps and "console-app.gureum-1.apps.gureum.internal" in apps
        assert "serving" not in console.get("/console/apps/console-app").text  # no releases
        assert console.get("/console/auto-scaling/nope").status == 400
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="console-asg", ForceDelete=True)


def test_alarms_and_cpu_graph(fast, console, ec2, image_id):
    cw = fast.client("cloudwatch")
    instance_id = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    try:
        console.get("/console/alarms")
        form = {"alarm_name": "console-cpu", "metric": f"cpu:{instance_id}",
                "operator": "GreaterThanThreshold", "threshold": "80", "period": "60",
                "periods": "1"}
        bad = console.post("/console/alarms", {**form, "period": "45"})
        assert bad.status == 400 and field_error(bad.text, "period").startswith(
            "InvalidParameterValue")
        bad = console.post("/console/alarms", {**form, "threshold": "high"})
        assert field_error(bad.text, "threshold").startswith("InvalidParameterValue")
        assert console.post("/console/alarms", form).status == 303
        (alarm,) = cw.describe_alarms(AlarmNames=["console-cpu"])["MetricAlarms"]
        assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": instance_id}]
        alarms = console.get("/console/alarms").text
        assert "console-cpu" in alarms and "GreaterThanThreshold" in alarms
        assert "console-cpu" in console.get("/console/alarms/rows").text
        # The metrics controller measures the running instance (every second here).
        assert wait_for(lambda: "<polyline" in console.get(
            f"/console/instances/{instance_id}/cpu").text, 15, interval=0.5)
        assert 'data-refresh="/console/instances/' + instance_id + '/cpu"' in console.get(
            f"/console/instances/{instance_id}").text
        assert console.post("/console/alarms/delete", {"alarm_name": "console-cpu",
                                                       "confirm": "yes"}).status == 303
        assert not cw.describe_alarms(AlarmNames=["console-cpu"])["MetricAlarms"]
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])


def test_chart_scales_and_labels():
    import datetime as dt
    t0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    svg = line_chart("CPU", [(t0, 1.0), (t0 + dt.timedelta(minutes=1), 3.0)], " %",
                     floor_max=10.0)
    assert 'aria-label="CPU: latest 3.00 %"' in svg and ">10 %<" in svg
    assert "No data yet" in line_chart("CPU", [])
    assert "<script" not in line_chart("<script>", [(t0, 1.0)])


def test_instance_tags_added_changed_removed_with_the_apis_errors(console, ec2, image_id):
    instance_id = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    path = f"/console/tags/instance/{instance_id}"
    try:
        assert 'aria-label="Add or change a tag"' in console.get(
            f"/console/instances/{instance_id}").text
        assert console.post(path, {"tag_key": "env", "tag_value": "test"}).status == 303
        assert console.post(path, {"tag_key": "env", "tag_value": " prod "}).status == 303
        tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])
        assert [(t["Key"], t["Value"]) for t in tags["Tags"]] == [("env", " prod ")]
        shown = console.get(f"/console/instances/{instance_id}").text
        assert "Tagged instance" in shown and 'aria-label="Remove tag env"' in shown
        reserved = console.post(path, {"tag_key": "aws:owner", "tag_value": "x"})
        assert reserved.status == 400  # the instance's own page, the error at the key
        assert field_error(reserved.text, "tag_key").startswith("InvalidParameterValue")
        assert 'value="aws:owner"' in reserved.text and "<h2>CPU utilization" in reserved.text
        assert field_error(console.post(path, {"tag_key": "k" * 129}).text,
                           "tag_key").startswith("InvalidParameterValue")
        long_value = console.post(path, {"tag_key": "k", "tag_value": "v" * 257})
        assert field_error(long_value.text, "tag_value").startswith("InvalidParameterValue")
        ec2.create_tags(Resources=[instance_id],
                        Tags=[{"Key": f"k{n}", "Value": ""} for n in range(49)])
        full = console.post(path, {"tag_key": "one-more", "tag_value": ""})
        assert full.status == 400
        assert field_error(full.text, "tag_key").startswith("TagLimitExceeded")
        assert console.post(path + "/delete", {"tag_key": "env"}).status == 303
        left = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]},
                                          {"Name": "key", "Values": ["env"]}])["Tags"]
        assert left == []
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])


def test_tags_of_resources_without_a_page_of_their_own(console, ec2, image_id):
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    for kind, resource, listed_on in [("vpc", vpc, "/console/vpcs"),
                                      ("subnet", subnet, "/console/vpcs"),
                                      ("image", image_id, "/console/images"),
                                      ("security-group", group, f"/console/security-groups/{group}")]:
        assert f"/console/tags/{kind}/{resource}" in console.get(listed_on).text
        page = console.get(f"/console/tags/{kind}/{resource}")
        assert page.status == 200 and 'aria-label="Add or change a tag"' in page.text
        assert console.post(f"/console/tags/{kind}/{resource}",
                            {"tag_key": "team", "tag_value": "web"}).status == 303
        assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]},
                                          {"Name": "key", "Values": ["team"]}])["Tags"]
        assert console.post(f"/console/tags/{kind}/{resource}/delete",
                            {"tag_key": "team"}).status == 303
        assert not ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]},
                                              {"Name": "key", "Values": ["team"]}])["Tags"]
    assert console.get("/console/tags/nothing/x").status == 404
    unknown = console.post("/console/tags/vpc/vpc-0000000000000000f", {"tag_key": "a"})
    assert unknown.status == 400 and "InvalidVpcID.NotFound" in unknown.text


def test_load_balancer_and_auto_scaling_group_tags(fast, console, ec2, image_id):
    elb, asg = fast.client("elbv2"), fast.client("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lb = elb.create_load_balancer(Name="tagged-lb", Subnets=[subnet])["LoadBalancers"][0]
    ec2.create_launch_template(LaunchTemplateName="tagged-asg", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})
    asg.create_auto_scaling_group(AutoScalingGroupName="tagged-asg", MinSize=0, MaxSize=1,
                                  DesiredCapacity=0, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateName": "tagged-asg"})
    try:
        path = "/console/tags/load-balancer/tagged-lb"
        assert 'aria-label="Add or change a tag"' in console.get(
            "/console/load-balancers/tagged-lb").text
        assert console.post(path, {"tag_key": "env", "tag_value": "prod"}).status == 303
        assert elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0][
            "Tags"] == [{"Key": "env", "Value": "prod"}]
        bad = console.post(path, {"tag_key": "aws:x", "tag_value": ""})
        assert bad.status == 400 and field_error(bad.text, "tag_key").startswith("ValidationError")
        assert console.post(path + "/delete", {"tag_key": "env"}).status == 303
        assert not elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])[
            "TagDescriptions"][0]["Tags"]

        path = "/console/tags/auto-scaling-group/tagged-asg"
        assert "On launched instances" in console.get("/console/auto-scaling/tagged-asg").text
        assert console.post(path, {"tag_key": "team", "tag_value": "web",
                                   "propagate": "yes"}).status == 303
        (tag,) = asg.describe_tags(Filters=[{"Name": "auto-scaling-group",
                                             "Values": ["tagged-asg"]}])["Tags"]
        assert tag["Key"] == "team" and tag["PropagateAtLaunch"] is True
        long_value = console.post(path, {"tag_key": "team", "tag_value": "v" * 257})
        assert field_error(long_value.text, "tag_value").startswith("ValidationError")
        assert console.post(path + "/delete", {"tag_key": "team"}).status == 303
        assert not asg.describe_tags(Filters=[{"Name": "auto-scaling-group",
                                               "Values": ["tagged-asg"]}])["Tags"]
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="tagged-asg", ForceDelete=True)
        ec2.delete_launch_template(LaunchTemplateName="tagged-asg")
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def test_create_load_balancer_target_group_listener_and_targets(fast, console, ec2, image_id):
    elb = fast.client("elbv2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"][0]
    assert 'aria-labelledby="create-title"' in console.get("/console/load-balancers").text
    form = {"name": "made-lb", "type": "application", "scheme": "internet-facing",
            "subnets": [subnet["SubnetId"]]}
    bad = console.post("/console/load-balancers", {**form, "name": "bad name!"})
    assert bad.status == 400 and field_error(bad.text, "name").startswith("ValidationError")
    assert 'value="bad name!"' in bad.text
    none = console.post("/console/load-balancers", {**form, "subnets": []})
    assert field_error(none.text, "subnets").startswith("ValidationError")
    made = console.post("/console/load-balancers", form)
    assert made.status == 303 and made.headers["location"] == "/console/load-balancers/made-lb"
    again = console.post("/console/load-balancers", form)
    assert field_error(again.text, "name").startswith("DuplicateLoadBalancerName")

    group = {"name": "made-tg", "protocol": "HTTP", "port": "8080",
             "vpc_id": subnet["VpcId"], "hc_protocol": "", "hc_port": "", "hc_path": "/health",
             "hc_interval": "10", "hc_timeout": "5", "hc_healthy": "2", "hc_unhealthy": "3",
             "hc_matcher": "200-299"}
    console.get("/console/target-groups")
    for wrong, at, code in [({"hc_interval": "often"}, "hc_interval", "InvalidParameterValue"),
                            ({"hc_timeout": "20"}, "hc_timeout", "ValidationError"),
                            ({"hc_path": "health"}, "hc_path", "ValidationError"),
                            ({"hc_unhealthy": "11"}, "hc_unhealthy", "ValidationError"),
                            ({"hc_matcher": "600"}, "hc_matcher", "ValidationError"),
                            ({"port": "0"}, "port", "ValidationError"),
                            ({"name": "-x"}, "name", "ValidationError")]:
        answer = console.post("/console/target-groups", {**group, **wrong})
        assert answer.status == 400 and field_error(answer.text, at).startswith(code), (wrong,
                                                                                        answer.text)
    assert console.post("/console/target-groups", group).status == 303
    (tg,) = elb.describe_target_groups(Names=["made-tg"])["TargetGroups"]
    assert (tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"], tg["UnhealthyThresholdCount"],
            tg["Matcher"]["HttpCode"]) == ("/health", 10, 3, "200-299")

    page = "/console/load-balancers/made-lb"
    assert "made-tg (HTTP:8080)" in console.get(page).text
    listener = {"protocol": "HTTP", "port": "80", "target_group": tg["TargetGroupArn"],
                "certificate": ""}
    for wrong, at, code in [({"port": "eighty"}, "port", "InvalidParameterValue"),
                            ({"target_group": ""}, "target_group", "ValidationError"),
                            ({"protocol": "HTTPS"}, "certificate", "ValidationError")]:
        answer = console.post(f"{page}/listeners", {**listener, **wrong})
        assert answer.status == 400 and field_error(answer.text, at).startswith(code), wrong
    assert console.post(f"{page}/listeners", listener).status == 303
    (made_listener,) = elb.describe_listeners(LoadBalancerArn=elb.describe_load_balancers(
        Names=["made-lb"])["LoadBalancers"][0]["LoadBalancerArn"])["Listeners"]
    assert made_listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]

    instance_id = ec2.run_instances(ImageId=image_id, InstanceType="t3.nano", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    try:
        targets = "/console/target-groups/made-tg/targets"
        console.get("/console/target-groups/made-tg")
        wrong = console.post(targets, {"instance_id": "i-0123456789abcdef0", "target_port": ""})
        assert field_error(wrong.text, "instance_id").startswith("InvalidTarget")
        wrong = console.post(targets, {"instance_id": instance_id, "target_port": "70000"})
        assert field_error(wrong.text, "target_port").startswith("ValidationError")
        assert console.post(targets, {"instance_id": instance_id, "target_port": ""}).status == 303
        health = console.get("/console/target-groups/made-tg/health").text
        assert instance_id in health and f'aria-label="Deregister {instance_id}"' in health
        assert instance_id in console.get(f"{page}/health").text  # the balancer's page too
        assert console.post(targets + "/delete", {"instance_id": instance_id,
                                                  "target_port": "8080"}).status == 303
        assert wait_for(lambda: not any(
            t["TargetHealth"]["State"] != "draining" for t in elb.describe_target_health(
                TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]), 10)
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
    assert "Delete listener HTTP:80 of made-lb?" in console.post(f"{page}/listeners/delete", {
        "listener_arn": made_listener["ListenerArn"], "label": "HTTP:80"}).text
    assert console.post(f"{page}/listeners/delete", {
        "listener_arn": made_listener["ListenerArn"], "label": "HTTP:80",
        "confirm": "yes"}).status == 303
    assert console.post(f"{page}/delete", {"confirm": "yes"}).status == 303
    assert console.post("/console/target-groups/made-tg/delete", {"confirm": "yes"}).status == 303
    assert not [lb for lb in elb.describe_load_balancers()["LoadBalancers"]
                if lb["LoadBalancerName"] == "made-lb"]


def test_create_auto_scaling_group_from_a_template_made_in_the_wizard(fast, console, ec2,
                                                                      image_id):
    asg, elb = fast.client("autoscaling"), fast.client("elbv2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"][0]
    wizard = console.get("/console/launch-templates/new").text
    assert "Create a launch template" in wizard and 'name="count"' not in wizard
    template = {"template_name": "wizard-lt", "image_id": image_id, "instance_type": "t3.nano",
                "name": "web", "user_data": "#!/bin/sh\r\necho hi\r\n"}
    short = console.post("/console/launch-templates", {**template, "template_name": "x"})
    assert short.status == 400
    assert field_error(short.text, "template_name").startswith("InvalidLaunchTemplateName")
    made = console.post("/console/launch-templates", template)
    assert made.status == 303
    assert made.headers["location"] == "/console/auto-scaling?launch_template=wizard-lt#create-title"
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateName="wizard-lt")[
        "LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == image_id and data["InstanceType"] == "t3.nano"
    assert base64.b64decode(data["UserData"]) == b"#!/bin/sh\necho hi\n"
    assert data["TagSpecifications"][0]["Tags"] == [{"Key": "Name", "Value": "web"}]
    assert '<option value="wizard-lt" selected>' in console.get(
        "/console/auto-scaling?launch_template=wizard-lt").text

    tg = elb.create_target_group(Name="asg-tg", Protocol="HTTP", Port=80,
                                 VpcId=subnet["VpcId"])["TargetGroups"][0]
    form = {"name": "made-asg", "launch_template": "wizard-lt", "version": "$Latest",
            "min": "1", "max": "2", "desired": "", "subnets": [subnet["SubnetId"]],
            "target_groups": [tg["TargetGroupArn"]], "health_check_type": "EC2", "grace": ""}
    for wrong, at in [({"min": "3"}, "max"), ({"desired": "5"}, "desired"),
                      ({"min": "-1"}, "min"), ({"max": "many"}, "max"),
                      ({"subnets": []}, "subnets"), ({"launch_template": ""}, "launch_template"),
                      ({"target_groups": [tg["TargetGroupArn"] + "0"]}, "target_groups"),
                      ({"grace": "99999"}, "grace"), ({"name": ""}, "name")]:
        answer = console.post("/console/auto-scaling", {**form, **wrong})
        assert answer.status == 400 and re.match(
            "(ValidationError|InvalidParameterValue)", field_error(answer.text, at)), wrong
    try:
        created = console.post("/console/auto-scaling", form)
        assert created.status == 303 and created.headers["location"] == "/console/auto-scaling/made-asg"
        assert field_error(console.post("/console/auto-scaling", form).text,
                           "name").startswith("AlreadyExists")
        (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["made-asg"])[
            "AutoScalingGroups"]
        assert group["TargetGroupARNs"] == [tg["TargetGroupArn"]] and group["DesiredCapacity"] == 1
        assert wait_for(lambda: elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])[
            "TargetHealthDescriptions"], 15)
        assert "Delete group" in console.get("/console/auto-scaling/made-asg").text
        assert console.post("/console/auto-scaling/made-asg/delete",
                            {"confirm": "yes"}).status == 303
        assert wait_for(lambda: not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["made-asg"])["AutoScalingGroups"], 20)
    finally:
        if asg.describe_auto_scaling_groups(AutoScalingGroupNames=["made-asg"])[
                "AutoScalingGroups"]:
            asg.delete_auto_scaling_group(AutoScalingGroupName="made-asg", ForceDelete=True)
        wait_for(lambda: not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["made-asg"])["AutoScalingGroups"], 20)
        elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
        ec2.delete_launch_template(LaunchTemplateName="wizard-lt")


def test_alarm_on_a_load_balancer_metric_running_a_scaling_policy(fast, console, ec2, image_id):
    elb, asg, cw = fast.client("elbv2"), fast.client("autoscaling"), fast.client("cloudwatch")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lb = elb.create_load_balancer(Name="alarmed-lb", Subnets=[subnet])["LoadBalancers"][0]
    dimension = lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
    ec2.create_launch_template(LaunchTemplateName="alarmed", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.nano"})
    asg.create_auto_scaling_group(AutoScalingGroupName="alarmed", MinSize=0, MaxSize=2,
                                  DesiredCapacity=0, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateName": "alarmed"})
    policy = asg.put_scaling_policy(AutoScalingGroupName="alarmed", PolicyName="add-one",
                                    PolicyType="SimpleScaling", AdjustmentType="ChangeInCapacity",
                                    ScalingAdjustment=1)["PolicyARN"]
    try:
        page = console.get("/console/alarms").text
        assert f'<option value="requests:{dimension}">' in page
        assert '<optgroup label="Load balancer alarmed-lb">' in page
        assert f'<option value="{policy}">alarmed: add-one</option>' in page
        form = {"alarm_name": "busy-lb", "metric": f"requests:{dimension}",
                "operator": "GreaterThanThreshold", "threshold": "100", "period": "60",
                "periods": "2", "action": policy}
        nothing = console.post("/console/alarms", {**form, "metric": ""})
        assert nothing.status == 400 and field_error(nothing.text, "metric").startswith("Choose")
        zero = console.post("/console/alarms", {**form, "periods": "0"})
        assert field_error(zero.text, "periods").startswith("InvalidParameterValue")
        assert 'value="busy-lb"' in zero.text and f'value="{policy}" selected' in zero.text
        assert console.post("/console/alarms", form).status == 303
        assert console.post("/console/alarms", {**form, "alarm_name": "slow-lb",
                                                "metric": f"latency:{dimension}",
                                                "threshold": "0.5", "action": ""}).status == 303
        (busy,) = cw.describe_alarms(AlarmNames=["busy-lb"])["MetricAlarms"]
        assert (busy["Namespace"], busy["MetricName"], busy["Statistic"]) == (
            "AWS/ApplicationELB", "RequestCount", "Sum")
        assert busy["Dimensions"] == [{"Name": "LoadBalancer", "Value": dimension}]
        assert busy["AlarmActions"] == [policy]
        (slow,) = cw.describe_alarms(AlarmNames=["slow-lb"])["MetricAlarms"]
        assert (slow["MetricName"], slow["Statistic"], slow["AlarmActions"]) == (
            "TargetResponseTime", "Average", [])
        (described,) = asg.describe_policies(PolicyNames=["add-one"])["ScalingPolicies"]
        assert [a["AlarmName"] for a in described["Alarms"]] == ["busy-lb"]
        assert "alarmed: add-one" in console.get("/console/alarms/rows").text
    finally:
        cw.delete_alarms(AlarmNames=["busy-lb", "slow-lb"])
        asg.delete_auto_scaling_group(AutoScalingGroupName="alarmed", ForceDelete=True)
        ec2.delete_launch_template(LaunchTemplateName="alarmed")
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
