"""Elastic IPs: allocate, associate with an instance, disassociate, release."""

from __future__ import annotations

from gureum.console.http import Response
from gureum.console.page import Page
from gureum.console.pages.instances import instances
from gureum.console.routing import route


@route("GET", "/addresses")
def list_addresses(page: Page) -> Response:
    addresses = page.call("DescribeAddresses")["Addresses"]
    live = [i for i in instances(page) if i["State"]["Name"] in ("pending", "running",
                                                                  "stopping", "stopped")]
    return page.render("addresses.html", addresses=addresses, instances=live)


def _change(page: Page, action: str, params: dict[str, str], message: str) -> Response:
    return page.change(action, params, "/addresses", message)


@route("POST", "/addresses")
def allocate(page: Page) -> Response:
    return page.change("AllocateAddress", {"Domain": "vpc"}, "/addresses",
                       lambda out: f"Allocated {out['PublicIp']} ({out['AllocationId']})")


@route("POST", "/addresses/{allocation_id}/associate")
def associate(page: Page, allocation_id: str) -> Response:
    instance_id = page.request.field("instance_id")
    return _change(page, "AssociateAddress", {"AllocationId": allocation_id,
                                              "InstanceId": instance_id},
                   f"Associated {allocation_id} with {instance_id}")


@route("POST", "/addresses/{allocation_id}/disassociate")
def disassociate(page: Page, allocation_id: str) -> Response:
    return _change(page, "DisassociateAddress",
                   {"AssociationId": page.request.field("association_id")},
                   f"Disassociated {allocation_id}")


@route("POST", "/addresses/{allocation_id}/release")
def release(page: Page, allocation_id: str) -> Response:
    if (ask := page.unconfirmed(kind="Elastic IP", name=allocation_id, verb="release",
                                action=f"/addresses/{allocation_id}/release",
                                back="/addresses")) is not None:
        return ask
    return _change(page, "ReleaseAddress", {"AllocationId": allocation_id},
                   f"Released {allocation_id}")
