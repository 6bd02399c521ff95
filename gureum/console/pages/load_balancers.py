"""Load balancers: list and create, and one balancer's listeners (added with a forward
to a target group, removed), target groups with live target health, its request and
latency graphs, delete."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.monitoring import graph
from gureum.console.pages.tags import LOAD_BALANCER, Taggable, editor, register
from gureum.console.pages.target_groups import with_health
from gureum.console.routing import route
from gureum.errors import ApiError

TYPES = [("application", "Application (HTTP, HTTPS)"), ("network", "Network (TCP)")]
SCHEMES = [("internet-facing", "Internet-facing"), ("internal", "Internal (VPC only)")]
LISTENER_PROTOCOLS = {"application": ["HTTP", "HTTPS"], "network": ["TCP"]}
NEW_BALANCER = {"name": "", "type": "application", "scheme": "internet-facing",
                "subnets": [], "group_ids": []}
BALANCER_FIELDS = {"DuplicateLoadBalancerName": "name", "TooManyLoadBalancers": "name",
                   "~name": "name", "~type": "type", "SubnetNotFound": "subnets",
                   "InvalidSubnet": "subnets", "~subnet": "subnets",
                   "~Availability Zone": "subnets", "InvalidSecurityGroup": "group_ids",
                   "~Scheme": "scheme", "~address pool": "scheme"}
NEW_LISTENER = {"protocol": "HTTP", "port": "80", "target_group": "", "certificate": ""}
LISTENER_FIELDS = {"UnsupportedProtocol": "protocol", "~Protocol": "protocol",
                   "DuplicateListener": "port", "TooManyListeners": "port", "~port": "port",
                   "IncompatibleProtocols": "target_group", "TargetGroupNotFound": "target_group",
                   "~target group": "target_group", "CertificateNotFound": "certificate",
                   "~certificate": "certificate", "SSLPolicyNotFound": "certificate"}


def _balancer(page: Page, name: str) -> dict[str, Any]:
    return page.call("DescribeLoadBalancers", {"Names": [name]}, service="elbv2")[
        "LoadBalancers"][0]


def metric_name(lb: dict[str, Any]) -> str:
    """The LoadBalancer dimension CloudWatch files its metrics under (app/NAME/ID)."""
    return lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]


def target_health(page: Page, lb: dict[str, Any]) -> list[dict[str, Any]]:
    return with_health(page, page.call("DescribeTargetGroups", {
        "LoadBalancerArn": lb["LoadBalancerArn"]}, service="elbv2")["TargetGroups"])


def _list(page: Page, status: int = 200, **context: Any) -> Response:
    """The balancers, and the form that creates one."""
    context.setdefault("values", NEW_BALANCER)
    return page.render("load_balancers.html", status=status,
                       balancers=page.call("DescribeLoadBalancers", service="elbv2")[
                           "LoadBalancers"], types=TYPES, schemes=SCHEMES,
                       subnets=page.call("DescribeSubnets")["Subnets"],
                       groups=page.call("DescribeSecurityGroups")["SecurityGroups"], **context)


@route("GET", "/load-balancers")
def list_balancers(page: Page) -> Response:
    return _list(page)


@route("POST", "/load-balancers")
def create(page: Page) -> Response:
    f = page.request
    values = {"name": f.field("name"), "type": f.field("type") or "application",
              "scheme": f.field("scheme") or "internet-facing", "subnets": f.fields("subnets"),
              "group_ids": f.fields("group_ids")}
    params: dict[str, Any] = {"Name": values["name"], "Type": values["type"],
                              "Scheme": values["scheme"], "Subnets": values["subnets"]}
    if values["group_ids"]:
        params["SecurityGroups"] = values["group_ids"]
    try:
        out = page.call("CreateLoadBalancer", params, service="elbv2")
    except ApiError as err:
        return _list(page, err.status, values=values, errors=error_on(err, BALANCER_FIELDS))
    lb = out["LoadBalancers"][0]
    return page.done(f"/load-balancers/{lb['LoadBalancerName']}",
                     f"Created load balancer {lb['LoadBalancerName']} ({lb['DNSName']}); "
                     "add a listener to serve")


@route("GET", "/load-balancers/{name}")
def show(page: Page, name: str, status: int = 200, **context: Any) -> Response:
    lb = _balancer(page, name)
    listeners = page.call("DescribeListeners", {"LoadBalancerArn": lb["LoadBalancerArn"]},
                          service="elbv2")["Listeners"]
    context.setdefault("tagging", editor(page, "load-balancer", name))
    context.setdefault("listener", NEW_LISTENER)
    # What a listener may forward to (groups in the balancer's VPC) and serve (issued
    # certificates), as (value, text) options.
    in_vpc = [(g["TargetGroupArn"], f"{g['TargetGroupName']} ({g['Protocol']}:{g['Port']})")
              for g in page.call("DescribeTargetGroups", service="elbv2")["TargetGroups"]
              if g.get("VpcId") == lb["VpcId"]]
    certificates = [(c["CertificateArn"], c["DomainName"]) for c in page.call(
        "ListCertificates", {"CertificateStatuses": ["ISSUED"]}, service="acm")[
        "CertificateSummaryList"]]
    return page.render("load_balancer.html", status=status, lb=lb, listeners=listeners,
                       groups=target_health(page, lb), target_groups=in_vpc,
                       certificates=certificates,
                       listener_protocols=LISTENER_PROTOCOLS[lb["Type"]], **context)


register("load-balancer", Taggable("load balancer", "Load balancers", LOAD_BALANCER,
                                   lambda n: f"/load-balancers/{n}", show))


@route("GET", "/load-balancers/{name}/health")
def health(page: Page, name: str) -> Response:
    """Target health alone, refreshed live."""
    return page.fragment("_target_health.html", groups=target_health(page, _balancer(page, name)))


@route("GET", "/load-balancers/{name}/graphs")
def graphs(page: Page, name: str) -> Response:
    lb = _balancer(page, name)
    dims = {"LoadBalancer": metric_name(lb)}
    if lb["Type"] == "network":
        charts = [graph(page, "New flows", "AWS/NetworkELB", "NewFlowCount", dims,
                        statistic="Sum"),
                  graph(page, "Processed bytes", "AWS/NetworkELB", "ProcessedBytes", dims,
                        statistic="Sum")]
    else:
        charts = [graph(page, "Requests", "AWS/ApplicationELB", "RequestCount", dims,
                        statistic="Sum"),
                  graph(page, "Latency (target response time)", "AWS/ApplicationELB",
                        "TargetResponseTime", dims, unit=" s", floor_max=0.01)]
    return page.fragment("_charts.html", charts=charts)


@route("POST", "/load-balancers/{name}/listeners")
def add_listener(page: Page, name: str) -> Response:
    """A listener forwarding to one target group (HTTPS: with an ACM certificate)."""
    listener = {k: page.request.field(k) for k in NEW_LISTENER}
    params: dict[str, Any] = {
        "LoadBalancerArn": _balancer(page, name)["LoadBalancerArn"],
        "Protocol": listener["protocol"], "Port": listener["port"],
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": listener["target_group"]}]}
    if listener["certificate"]:
        params["Certificates"] = [{"CertificateArn": listener["certificate"]}]
    try:
        page.call("CreateListener", params, service="elbv2")
    except ApiError as err:
        return show(page, name, err.status, listener=listener,
                    errors=error_on(err, LISTENER_FIELDS))
    return page.done(f"/load-balancers/{name}",
                     f"Added listener {listener['protocol']}:{listener['port']} to {name}")


@route("POST", "/load-balancers/{name}/listeners/delete")
def delete_listener(page: Page, name: str) -> Response:
    arn, label = page.request.field("listener_arn"), page.request.field("label")
    if (ask := page.unconfirmed(kind="listener", name=f"{label} of {name}",
                                action=f"/load-balancers/{name}/listeners/delete",
                                extra={"listener_arn": arn, "label": label},
                                back=f"/load-balancers/{name}")) is not None:
        return ask
    return page.change("DeleteListener", {"ListenerArn": arn}, f"/load-balancers/{name}",
                       f"Deleted listener {label} of {name}", service="elbv2")


@route("POST", "/load-balancers/{name}/delete")
def delete(page: Page, name: str) -> Response:
    if (ask := page.unconfirmed(kind="load balancer", name=name,
                                action=f"/load-balancers/{name}/delete",
                                back=f"/load-balancers/{name}",
                                note="Its listeners go with it; its target groups and their "
                                     "instances stay.")) is not None:
        return ask
    return page.change("DeleteLoadBalancer", {"LoadBalancerArn": _balancer(page, name)[
        "LoadBalancerArn"]}, "/load-balancers", f"Deleted load balancer {name}",
        failed=f"/load-balancers/{name}", service="elbv2")
