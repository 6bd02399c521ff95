"""Load balancers: list, and one balancer's listeners, target groups with live target
health, and its request and latency graphs."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page
from gureum.console.pages.monitoring import graph
from gureum.console.pages.tags import LOAD_BALANCER, Taggable, editor, register
from gureum.console.routing import route


def _balancer(page: Page, name: str) -> dict[str, Any]:
    return page.call("DescribeLoadBalancers", {"Names": [name]}, service="elbv2")[
        "LoadBalancers"][0]


def metric_name(lb: dict[str, Any]) -> str:
    """The LoadBalancer dimension CloudWatch files its metrics under (app/NAME/ID)."""
    return lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]


def target_health(page: Page, lb: dict[str, Any]) -> list[dict[str, Any]]:
    groups = page.call("DescribeTargetGroups", {"LoadBalancerArn": lb["LoadBalancerArn"]},
                       service="elbv2")["TargetGroups"]
    for group in groups:
        group["Health"] = page.call("DescribeTargetHealth", {
            "TargetGroupArn": group["TargetGroupArn"]}, service="elbv2")[
            "TargetHealthDescriptions"]
    return groups


@route("GET", "/load-balancers")
def list_balancers(page: Page) -> Response:
    found = page.call("DescribeLoadBalancers", service="elbv2")["LoadBalancers"]
    return page.render("load_balancers.html", balancers=found)


@route("GET", "/load-balancers/{name}")
def show(page: Page, name: str, status: int = 200, **context: Any) -> Response:
    lb = _balancer(page, name)
    listeners = page.call("DescribeListeners", {"LoadBalancerArn": lb["LoadBalancerArn"]},
                          service="elbv2")["Listeners"]
    context.setdefault("tagging", editor(page, "load-balancer", name))
    return page.render("load_balancer.html", status=status, lb=lb, listeners=listeners,
                       groups=target_health(page, lb), **context)


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
