"""Tags of any resource, edited in one place: a key and value added (or changed: the
same key again) and removed through each service's own tag actions, their errors at
the field. Page modules register their kinds (`register`) and show `editor(...)` with
the `_tags.html` partial; kinds without a page of their own use /tags/{kind}/{id}."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gureum.console.http import PREFIX, Response
from gureum.console.page import Page, error_on
from gureum.console.routing import route
from gureum.errors import ApiError

Tag = dict[str, Any]  # {"Key", "Value"} (and "PropagateAtLaunch" for Auto Scaling)

# Each service's messages name the part at fault ("Tag value exceeds...", "The value of
# tag X is longer...", "Tag keys may not start with 'aws:'"); the limit on a resource's
# tag count is about adding one more key.
FIELDS = {"~tag value": "tag_value", "~value of tag": "tag_value",
          "TagLimitExceeded": "tag_key", "TooManyTags": "tag_key", "LimitExceeded": "tag_key",
          "DuplicateTagKeys": "tag_key", "~key": "tag_key", "~aws:": "tag_key"}


class TagApi(Protocol):
    """One service's tag actions on a resource named as the console's path names it."""

    propagate: bool  # tags may be put on the instances it launches (Auto Scaling)

    def read(self, page: Page, resource: str) -> list[Tag]: ...
    def put(self, page: Page, resource: str, key: str, value: str, propagate: bool) -> None: ...
    def remove(self, page: Page, resource: str, key: str) -> None: ...


class Ec2Tags:
    """CreateTags/DeleteTags: instances, volumes, security groups, VPCs, subnets, images."""

    propagate = False

    def read(self, page: Page, resource: str) -> list[Tag]:
        found = page.call("DescribeTags", {"Filters": [
            {"Name": "resource-id", "Values": [resource]}]})["Tags"]
        return [{"Key": t["Key"], "Value": t["Value"]} for t in found]

    def put(self, page: Page, resource: str, key: str, value: str, propagate: bool) -> None:
        page.call("CreateTags", {"Resources": [resource], "Tags": [{"Key": key, "Value": value}]})

    def remove(self, page: Page, resource: str, key: str) -> None:
        page.call("DeleteTags", {"Resources": [resource], "Tags": [{"Key": key}]})


class LoadBalancerTags:
    """AddTags/RemoveTags on a load balancer, named in the path by its name."""

    propagate = False

    def _arn(self, page: Page, name: str) -> str:
        return page.call("DescribeLoadBalancers", {"Names": [name]}, service="elbv2")[
            "LoadBalancers"][0]["LoadBalancerArn"]

    def read(self, page: Page, resource: str) -> list[Tag]:
        return page.call("DescribeTags", {"ResourceArns": [self._arn(page, resource)]},
                         service="elbv2")["TagDescriptions"][0]["Tags"]

    def put(self, page: Page, resource: str, key: str, value: str, propagate: bool) -> None:
        page.call("AddTags", {"ResourceArns": [self._arn(page, resource)],
                              "Tags": [{"Key": key, "Value": value}]}, service="elbv2")

    def remove(self, page: Page, resource: str, key: str) -> None:
        page.call("RemoveTags", {"ResourceArns": [self._arn(page, resource)],
                                 "TagKeys": [key]}, service="elbv2")


class AutoScalingTags:
    """CreateOrUpdateTags/DeleteTags on an Auto Scaling group (by name)."""

    propagate = True

    def read(self, page: Page, resource: str) -> list[Tag]:
        return page.call("DescribeTags", {"Filters": [
            {"Name": "auto-scaling-group", "Values": [resource]}]}, service="autoscaling")["Tags"]

    def put(self, page: Page, resource: str, key: str, value: str, propagate: bool) -> None:
        page.call("CreateOrUpdateTags", {"Tags": [{
            "ResourceId": resource, "ResourceType": "auto-scaling-group", "Key": key,
            "Value": value, "PropagateAtLaunch": propagate}]}, service="autoscaling")

    def remove(self, page: Page, resource: str, key: str) -> None:
        page.call("DeleteTags", {"Tags": [{"ResourceId": resource, "Key": key,
                                           "ResourceType": "auto-scaling-group"}]},
                  service="autoscaling")


EC2, LOAD_BALANCER, AUTO_SCALING = Ec2Tags(), LoadBalancerTags(), AutoScalingTags()


@dataclass(frozen=True)
class Taggable:
    label: str  # "security group"
    section: str  # where its list is: "Security groups"
    api: TagApi
    back: Callable[[str], str]  # the console path that shows the resource
    # Its own page, re-rendered with the editor's error (status, tagging=...); None: the
    # resource's tags are edited on /tags/{kind}/{id}.
    show: Callable[..., Response] | None = None


KINDS: dict[str, Taggable] = {}


def register(kind: str, taggable: Taggable) -> None:
    KINDS[kind] = taggable


@dataclass
class TagEditor:
    """What `_tags.html` shows: the tags, and the add form's values and errors."""

    action: str
    tags: list[Tag]
    propagate: bool
    values: dict[str, str] = field(default_factory=lambda: {"tag_key": "", "tag_value": "",
                                                            "propagate": ""})
    errors: dict[str, str] = field(default_factory=dict)


def editor(page: Page, kind: str, resource: str, values: dict[str, str] | None = None,
           errors: dict[str, str] | None = None) -> TagEditor:
    """The editor of one resource's tags, with the add form as it was sent (on an error)."""
    taggable = KINDS[kind]
    shown = TagEditor(f"{PREFIX}/tags/{kind}/{resource}", taggable.api.read(page, resource),
                      taggable.api.propagate)
    if values is not None:
        shown.values = values
    shown.errors = errors or {}
    return shown


def _where(kind: str, resource: str) -> str:
    """The page whose editor made the change: the resource's own, else its tag page."""
    taggable = KINDS[kind]
    return taggable.back(resource) if taggable.show else f"/tags/{kind}/{resource}"


def _page(page: Page, kind: str, resource: str, status: int = 200,
          tagging: TagEditor | None = None) -> Response:
    taggable = KINDS[kind]
    tagging = tagging or editor(page, kind, resource)
    if taggable.show is not None:
        return taggable.show(page, resource, status=status, tagging=tagging)
    return page.render("tags.html", status=status, label=taggable.label, resource=resource,
                       section=taggable.section,
                       back=PREFIX + taggable.back(resource), tagging=tagging)


def _no_such_kind() -> Response:
    return Response.text(404, "No such kind of taggable resource")


@route("GET", "/tags/{kind}/{resource}")
def show(page: Page, kind: str, resource: str) -> Response:
    if kind not in KINDS:
        return _no_such_kind()
    return _page(page, kind, resource)


@route("POST", "/tags/{kind}/{resource}")
def put(page: Page, kind: str, resource: str) -> Response:
    if kind not in KINDS:
        return _no_such_kind()
    taggable = KINDS[kind]
    values = {"tag_key": page.request.field("tag_key"),
              # A value's blanks are its own (a key's are trimmed, as the form shows it).
              "tag_value": page.request.form.get("tag_value", [""])[0],
              "propagate": page.request.field("propagate")}
    try:
        taggable.api.put(page, resource, values["tag_key"], values["tag_value"],
                         values["propagate"] == "yes")
    except ApiError as err:
        tagging = editor(page, kind, resource, values=values, errors=error_on(err, FIELDS))
        return _page(page, kind, resource, err.status, tagging)
    return page.done(_where(kind, resource),
                     f"Tagged {taggable.label} {resource}: {values['tag_key']}="
                     f"{values['tag_value']}")


@route("POST", "/tags/{kind}/{resource}/delete")
def remove(page: Page, kind: str, resource: str) -> Response:
    if kind not in KINDS:
        return _no_such_kind()
    taggable = KINDS[kind]
    key = page.request.field("tag_key")
    try:
        taggable.api.remove(page, resource, key)
    except ApiError as err:
        page.session.flash(f"{err.code}: {err.message}", "error")
        return page.redirect(_where(kind, resource))
    return page.done(_where(kind, resource),
                     f"Removed tag {key} from {taggable.label} {resource}")
