"""Apps made by `gureum deploy`: each is an Auto Scaling group tagged gureum:app, its
releases images tagged with the app and their release (deploy/resources.py)."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page
from gureum.console.routing import route
from gureum.deploy.resources import APP_TAG, RELEASE_TAG, app_host, release_number


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


@route("GET", "/apps")
def list_apps(page: Page) -> Response:
    groups = page.call("DescribeAutoScalingGroups", service="autoscaling")["AutoScalingGroups"]
    region = page.console.cloud.config.region
    apps = []
    for group in groups:
        tags = tags_of(group)
        if APP_TAG in tags:
            apps.append({"name": tags[APP_TAG], "release": tags.get(RELEASE_TAG, "?"),
                         "group": group, "url": f"http://{app_host(tags[APP_TAG], region)}/",
                         "in_service": sum(m["LifecycleState"] == "InService"
                                           for m in group["Instances"])})
    return page.render("apps.html", apps=sorted(apps, key=lambda a: a["name"]))


@route("GET", "/apps/{app}")
def show(page: Page, app: str) -> Response:
    images = page.call("DescribeImages", {"Owners": ["self"], "Filters": [
        {"Name": f"tag:{APP_TAG}", "Values": [app]}]})["Images"]
    releases = sorted(images, key=lambda i: -release_number(tags_of(i).get(RELEASE_TAG)))
    groups = [g for g in page.call("DescribeAutoScalingGroups", service="autoscaling")[
        "AutoScalingGroups"] if tags_of(g).get(APP_TAG) == app]
    serving = tags_of(groups[0]).get(RELEASE_TAG) if groups else None
    return page.render("app.html", app=app, releases=releases, group=groups[0] if groups else None,
                       serving=serving, tags_of=tags_of,
                       url=f"http://{app_host(app, page.console.cloud.config.region)}/")
