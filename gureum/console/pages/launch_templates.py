"""Launch templates made from the launch wizard's fields (the wizard in its template
mode), for Auto Scaling groups to launch from."""

from __future__ import annotations

from urllib.parse import quote

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.instances import (
    LAUNCH_FIELDS,
    choices,
    instance_params,
    wizard_defaults,
    wizard_values,
)
from gureum.console.routing import route
from gureum.errors import ApiError

FIELDS = {"InvalidLaunchTemplateName": "template_name", "~launch template name":
          "template_name", "~LaunchTemplateName": "template_name", **LAUNCH_FIELDS}


def _wizard(page: Page, values: dict[str, str], status: int = 200,
            errors: dict[str, str] | None = None) -> Response:
    return page.render("launch.html", status=status, mode="template", values=values,
                       errors=errors or {}, **choices(page))


@route("GET", "/launch-templates/new")
def new(page: Page) -> Response:
    values = {**wizard_defaults(page, page.call("DescribeImages")["Images"]),
              "template_name": ""}
    return _wizard(page, values)


@route("POST", "/launch-templates")
def create(page: Page) -> Response:
    values = {**wizard_values(page), "template_name": page.request.field("template_name")}
    try:
        out = page.call("CreateLaunchTemplate", {"LaunchTemplateName": values["template_name"],
                                                 "LaunchTemplateData": instance_params(values)})
    except ApiError as err:
        return _wizard(page, values, err.status, error_on(err, FIELDS))
    name = out["LaunchTemplate"]["LaunchTemplateName"]
    return page.done(f"/auto-scaling?launch_template={quote(name, safe='')}#create-title",
                     f"Created launch template {name} "
                     f"({out['LaunchTemplate']['LaunchTemplateId']})")
