"""CloudWatch custom metrics through boto3, which speaks smithy-rpc-v2-cbor to it, and the
same service over the query and JSON protocols older SDKs use."""

from __future__ import annotations

import datetime as dt
import json

from helpers import error_code as code
from test_front_door import raw, signed

from gureum.testing_inprocess import FastCloud


def test_put_list_and_statistics_over_cbor(fast: FastCloud) -> None:
    cw = fast.client("cloudwatch")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    dims = [{"Name": "Service", "Value": "shop"}]
    cw.put_metric_data(Namespace="App", MetricData=[
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": now, "Value": 10.0,
         "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": now + dt.timedelta(seconds=20),
         "Values": [20.0, 40.0], "Counts": [1, 2], "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": now + dt.timedelta(minutes=1),
         "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6},
         "Unit": "Milliseconds"}])
    metrics = cw.list_metrics(Namespace="App")["Metrics"]
    assert metrics == [{"Namespace": "App", "MetricName": "Latency", "Dimensions": dims}]
    assert cw.list_metrics(Dimensions=[{"Name": "Service", "Value": "other"}])["Metrics"] == []
    points = cw.get_metric_statistics(
        Namespace="App", MetricName="Latency", Dimensions=dims, StartTime=now,
        EndTime=now + dt.timedelta(minutes=2), Period=60,
        Statistics=["SampleCount", "Average", "Minimum", "Maximum", "Sum"])["Datapoints"]
    first, second = sorted(points, key=lambda d: d["Timestamp"])
    assert first["SampleCount"] == 4 and first["Sum"] == 110 and first["Average"] == 27.5
    assert (first["Minimum"], first["Maximum"], first["Unit"]) == (10, 40, "Milliseconds")
    assert second["Timestamp"] == now + dt.timedelta(minutes=1) and second["Average"] == 5


def test_cloudwatch_errors(fast: FastCloud) -> None:
    cw = fast.client("cloudwatch")
    assert code(cw.put_metric_data, Namespace="AWS/EC2", MetricData=[
        {"MetricName": "x", "Value": 1.0}]) == "InvalidParameterValue"
    assert code(cw.put_metric_data, Namespace="App", MetricData=[
        {"MetricName": "x", "Value": 1.0, "Values": [1.0]}]) == "InvalidParameterCombination"
    now = dt.datetime.now(dt.UTC)
    assert code(cw.get_metric_statistics, Namespace="App", MetricName="x", StartTime=now,
                EndTime=now - dt.timedelta(hours=1), Period=60,
                Statistics=["Sum"]) == "InvalidParameterValue"
    assert code(cw.get_metric_statistics, Namespace="App", MetricName="x",
                StartTime=now - dt.timedelta(hours=1), EndTime=now, Period=7,
                Statistics=["Sum"]) == "InvalidParameterValue"


def test_query_and_json_protocols_too(fast: FastCloud) -> None:
    status, text = signed(fast, "Action=ListMetrics&Version=2010-08-01&Namespace=App",
                          service="monitoring")
    assert status == 200 and "<ListMetricsResponse" in text and "<MetricName>Latency" in text
    status, text = signed(fast, "Action=PutMetricData&Version=2010-08-01&Namespace=AWS/X"
                          "&MetricData.member.1.MetricName=x&MetricData.member.1.Value=1",
                          service="monitoring")
    assert status == 400 and "<Code>InvalidParameterValue</Code>" in text
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=fast.endpoint + "/", data=json.dumps(
        {"Namespace": "App"}), headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics"})
    SigV4Auth(Credentials(*fast.credentials()), "monitoring", "gureum-1").add_auth(request)
    status, text = raw(fast, request.body, dict(request.headers.items()))
    assert status == 200 and json.loads(text)["Metrics"][0]["MetricName"] == "Latency"


def test_the_host_measures_instances_cpu(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    from gureum.services.ec2.instance_types import CATALOGUE
    from gureum.testing import wait_for
    from gureum.testing_inprocess import wait_state

    controller = fast.cloud.metrics_controller
    assert controller is not None
    saved, controller.resync_seconds = controller.resync_seconds, 0.2
    controller.wakeup.set()  # end the current (long) wait
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, iid, "running")
        fast.agent.cpu_load[iid] = 1.0  # one vCPU kept busy
        expected = 100.0 / CATALOGUE["t3.micro"].vcpus
        cw = fast.client("cloudwatch")
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)

        def average() -> float | None:
            points = cw.get_metric_statistics(
                Namespace="AWS/EC2", MetricName="CPUUtilization",
                Dimensions=[{"Name": "InstanceId", "Value": iid}], StartTime=start,
                EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1), Period=60,
                Statistics=["Average", "SampleCount"])["Datapoints"]
            return points[0]["Average"] if points and points[0]["SampleCount"] >= 3 else None

        assert wait_for(lambda: average() is not None, 10)
        assert abs(average() - expected) < expected * 0.25, (average(), expected)
        listed = cw.list_metrics(Namespace="AWS/EC2", Dimensions=[
            {"Name": "InstanceId", "Value": iid}])["Metrics"]
        assert {m["MetricName"] for m in listed} >= {"CPUUtilization", "NetworkIn", "NetworkOut",
                                                     "DiskWriteBytes", "StatusCheckFailed"}
        # The same measurements per instance type and per image, as AWS aggregates them.
        for dims in ([{"Name": "InstanceType", "Value": "t3.micro"}],
                     [{"Name": "ImageId", "Value": image_id}]):
            assert wait_for(lambda d=dims: cw.get_metric_statistics(
                Namespace="AWS/EC2", MetricName="CPUUtilization", Dimensions=d,
                StartTime=start, EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
                Period=60, Statistics=["Maximum"])["Datapoints"], 10), dims
    finally:
        controller.resync_seconds = saved
        ec2.terminate_instances(InstanceIds=[iid])


def test_load_balancer_metrics(fast: FastCloud, ec2, image_id) -> None:  # noqa: ANN001
    from gureum.testing import wait_for
    from gureum.testing_inprocess import wait_state

    controller = fast.cloud.metrics_controller
    assert controller is not None
    saved, controller.resync_seconds = controller.resync_seconds, 0.2
    controller.wakeup.set()
    elb, cw = fast.client("elbv2"), fast.client("cloudwatch")
    subnet = ec2.describe_subnets()["Subnets"][0]
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    tg = elb.create_target_group(Name="cw-tg", Protocol="HTTP", Port=80,
                                 VpcId=subnet["VpcId"])["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="cw-lb", Subnets=[subnet["SubnetId"]])["LoadBalancers"][0]
    lb_id = lb["LoadBalancerArn"].rsplit("/", 1)[-1]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    try:
        wait_state(ec2, iid, "running")
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
        backend = "RequestCount/tg-" + tg.rsplit("/", 1)[-1]
        # A new load balancer's counters start at zero, and its first reading counts whole.
        fast.agent.lb_counters[lb_id] = {"RequestCount": 0.0, backend: 0.0}
        name = "app/" + lb["LoadBalancerArn"].split("loadbalancer/app/", 1)[1]
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)

        def stat(metric: str, dims: list[dict[str, str]], statistic: str) -> float:
            points = cw.get_metric_statistics(
                Namespace="AWS/ApplicationELB", MetricName=metric, Dimensions=dims,
                StartTime=start, EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
                Period=120, Statistics=[statistic])["Datapoints"]
            return points[0][statistic] if points else 0.0

        lb_dims = [{"Name": "LoadBalancer", "Value": name}]
        assert wait_for(lambda: fast.cloud.metrics_controller.lb_last.get(lb_id), 10)
        tg_dims = lb_dims + [{"Name": "TargetGroup",
                              "Value": "targetgroup/" + tg.split(":targetgroup/", 1)[1]}]
        assert wait_for(lambda: stat("HealthyHostCount", tg_dims, "Maximum") == 1, 10)
        # 50 more requests served, all by this target group's one healthy target.
        fast.agent.lb_counters[lb_id] = {"RequestCount": 50.0, backend: 50.0}
        assert wait_for(lambda: stat("RequestCount", lb_dims, "Sum") == 50, 10)
        assert wait_for(lambda: stat("RequestCount", tg_dims, "Sum") == 50, 10)
        assert stat("RequestCountPerTarget", tg_dims[1:], "Sum") == 50
    finally:
        controller.resync_seconds = saved
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        elb.delete_target_group(TargetGroupArn=tg)
        ec2.terminate_instances(InstanceIds=[iid])


def test_get_metric_data(fast: FastCloud) -> None:
    cw = fast.client("cloudwatch")
    base = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    cw.put_metric_data(Namespace="Shop", MetricData=[
        {"MetricName": "Orders", "Timestamp": base + dt.timedelta(minutes=m), "Value": float(m)}
        for m in range(3)])
    metric = {"Namespace": "Shop", "MetricName": "Orders"}
    out = cw.get_metric_data(StartTime=base, EndTime=base + dt.timedelta(minutes=5),
                             MetricDataQueries=[
                                 {"Id": "sum", "MetricStat": {"Metric": metric, "Period": 60,
                                                              "Stat": "Sum"}},
                                 {"Id": "hidden", "ReturnData": False, "MetricStat": {
                                     "Metric": metric, "Period": 60, "Stat": "Maximum"}}])
    [result] = out["MetricDataResults"]
    assert result["Id"] == "sum" and result["StatusCode"] == "Complete"
    assert result["Values"] == [2.0, 1.0, 0.0], "newest first, as AWS's default ScanBy"
    assert result["Timestamps"][0] == base + dt.timedelta(minutes=2)
    assert code(cw.get_metric_data, StartTime=base, EndTime=base + dt.timedelta(minutes=5),
                MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS()"}]) == \
        "InvalidParameterValue"


def test_alarms_follow_their_metric(fast: FastCloud) -> None:
    from gureum.testing import wait_for

    controller = fast.cloud.metrics_controller
    assert controller is not None
    saved, controller.resync_seconds = controller.resync_seconds, 0.2
    controller.wakeup.set()
    cw = fast.client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    # Breaching data over the next two minutes (CloudWatch takes up to two hours ahead).
    cw.put_metric_data(Namespace="Load", MetricData=[
        {"MetricName": "Busy", "Timestamp": now + dt.timedelta(seconds=t), "Value": 80.0}
        for t in range(-60, 120, 5)])
    base = {"Namespace": "Load", "Statistic": "Average", "Period": 10, "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2, "Threshold": 50.0,
            "ComparisonOperator": "GreaterThanThreshold"}
    try:
        cw.put_metric_alarm(AlarmName="busy-high", MetricName="Busy", **base)
        cw.put_metric_alarm(AlarmName="quiet", MetricName="Nothing", **base)

        def state(name: str) -> str:
            return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]

        assert wait_for(lambda: state("busy-high") == "ALARM", 10)
        reason = cw.describe_alarms(AlarmNames=["busy-high"])["MetricAlarms"][0]["StateReason"]
        assert reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints")
        assert state("quiet") == "INSUFFICIENT_DATA"
        assert [a["AlarmName"] for a in cw.describe_alarms(StateValue="ALARM")[
            "MetricAlarms"]] == ["busy-high"]
        cw.put_metric_alarm(AlarmName="busy-high", MetricName="Busy",
                            **{**base, "Threshold": 90.0})  # an update, same name
        assert wait_for(lambda: state("busy-high") == "OK", 10)
        assert code(cw.put_metric_alarm, AlarmName="bad", MetricName="Busy",
                    **{**base, "DatapointsToAlarm": 4}) == "InvalidParameterValue"
        assert code(cw.delete_alarms, AlarmNames=["nobody"]) == "ResourceNotFound"
    finally:
        controller.resync_seconds = saved
        cw.delete_alarms(AlarmNames=["busy-high", "quiet"])
    assert cw.describe_alarms()["MetricAlarms"] == []


def test_alarm_history_tags_and_alarms_for_a_metric(fast: FastCloud) -> None:
    cw = fast.client("cloudwatch")
    dims = [{"Name": "Shop", "Value": "h"}]
    cw.put_metric_alarm(AlarmName="hist", Namespace="HistTest", MetricName="Load",
                        Dimensions=dims, Statistic="Average", Period=60, EvaluationPeriods=1,
                        Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        Tags=[{"Key": "team", "Value": "web"}])
    cw.put_metric_alarm(AlarmName="hist", Namespace="HistTest", MetricName="Load",
                        Dimensions=dims, Statistic="Average", Period=60, EvaluationPeriods=1,
                        Threshold=2.0, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="hist", StateValue="ALARM", StateReason="testing")
    items = cw.describe_alarm_history(AlarmName="hist")["AlarmHistoryItems"]
    assert [i["HistoryItemType"] for i in items] == ["StateUpdate", "ConfigurationUpdate",
                                                     "ConfigurationUpdate"]
    assert items[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert json.loads(items[0]["HistoryData"])["newState"]["stateReason"] == "testing"
    assert items[2]["HistorySummary"] == 'Alarm "hist" created'
    page = cw.describe_alarm_history(AlarmName="hist", MaxRecords=2,
                                     HistoryItemType="ConfigurationUpdate")
    assert len(page["AlarmHistoryItems"]) == 2 and "NextToken" not in page
    found = cw.describe_alarms_for_metric(Namespace="HistTest", MetricName="Load",
                                          Dimensions=dims)["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == ["hist"] and found[0]["Threshold"] == 2.0
    assert cw.describe_alarms_for_metric(Namespace="HistTest", MetricName="Load",
                                         Dimensions=[])["MetricAlarms"] == []
    arn = found[0]["AlarmArn"]
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "web"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "tier", "Value": "1"}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "tier", "Value": "1"}]
    assert code(cw.list_tags_for_resource, ResourceARN=arn + "x") == "ResourceNotFoundException"
    assert code(cw.describe_alarm_history, HistoryItemType="Nope") == "InvalidParameterValue"
    cw.delete_alarms(AlarmNames=["hist"])


def test_large_put_metric_data_arrives_gzipped(fast: FastCloud) -> None:
    """botocore gzips PutMetricData bodies above 10 KB (the model asks for request
    compression); the front door verifies the signature on what was sent, then inflates."""
    cw = fast.client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    data = [{"MetricName": "Big", "Dimensions": [{"Name": "Host", "Value": f"h{i % 7}"}],
             "Timestamp": now - dt.timedelta(seconds=i % 300), "Value": float(i)}
            for i in range(1000)]
    sent = []
    cw.meta.events.register("before-send.*.PutMetricData",
                            lambda request, **_: sent.append(request.headers.get(
                                "Content-Encoding")))
    cw.put_metric_data(Namespace="GzipTest", MetricData=data)
    assert sent == [b"gzip"] or sent == ["gzip"], sent
    points = cw.get_metric_statistics(
        Namespace="GzipTest", MetricName="Big", Dimensions=[{"Name": "Host", "Value": "h0"}],
        StartTime=now - dt.timedelta(minutes=6), EndTime=now + dt.timedelta(minutes=1),
        Period=600, Statistics=["SampleCount"])["Datapoints"]
    assert sum(p["SampleCount"] for p in points) == len(range(0, 1000, 7))


def test_series_ids_known_before_are_not_looked_up_again(fast: FastCloud) -> None:
    from sqlalchemy import event

    from gureum.services.cloudwatch import series

    account, _, _ = fast.cloud.create_account("series-ids")
    keys = {(account, "Test/Ids", f"m{i}", "[]", "Count") for i in range(3)}
    now = dt.datetime.now(dt.UTC)
    with fast.cloud.store.write() as s:
        first = series.write(s, [series.value(k, now, 1.0) for k in sorted(keys)])
    assert set(first) == keys
    statements: list[tuple[str, object]] = []
    engine = fast.cloud.store.engine
    listen = lambda *args: statements.append((args[2], args[3]))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        new = (account, "Test/Ids", "m3", "[]", "Count")
        with fast.cloud.store.write() as s:
            used = series.write(s, [series.value(k, now, 2.0) for k in [*keys, new]],
                                known=dict(first))
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert {k: used[k] for k in keys} == first and new in used
    lookups = [str(params) for q, params in statements if "FROM metric_series" in q]
    assert len(lookups) == 1 and "m3" in lookups[0]
    assert not any(f"'m{i}'" in lookups[0] for i in range(3))  # only the new key looked for
