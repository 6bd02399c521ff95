"""Images the account may launch: the cloud's own, its own and those shared with it."""

from __future__ import annotations

from gureum.console.http import Response
from gureum.console.page import Page
from gureum.console.pages.tags import EC2, Taggable, register
from gureum.console.routing import route

register("image", Taggable("image", "Images", EC2, lambda _: "/images"))


@route("GET", "/images")
def list_images(page: Page) -> Response:
    images = page.call("DescribeImages")["Images"]
    return page.render("images.html", images=images)
