"""VPCs and their subnets: list, create, delete."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.tags import EC2, Taggable, register
from gureum.console.routing import route
from gureum.errors import ApiError

VPC_FIELDS = {"InvalidVpc.Range": "vpc_cidr", "~cidr": "vpc_cidr", "~CidrBlock": "vpc_cidr"}
SUBNET_FIELDS = {"InvalidVpcID": "subnet_vpc", "InvalidSubnet": "subnet_cidr",
                 "~cidr": "subnet_cidr", "~CidrBlock": "subnet_cidr"}


register("vpc", Taggable("VPC", "VPCs", EC2, lambda _: "/vpcs"))
register("subnet", Taggable("subnet", "VPCs", EC2, lambda _: "/vpcs"))


def _list(page: Page, status: int = 200, **context: Any) -> Response:
    context.setdefault("values", {"vpc_cidr": "", "subnet_vpc": "", "subnet_cidr": "",
                                  "public": ""})
    vpcs = page.call("DescribeVpcs")["Vpcs"]
    subnets = page.call("DescribeSubnets")["Subnets"]
    return page.render("vpcs.html", status=status, vpcs=vpcs, subnets=subnets, **context)


@route("GET", "/vpcs")
def list_vpcs(page: Page) -> Response:
    return _list(page)


@route("POST", "/vpcs")
def create_vpc(page: Page) -> Response:
    values = {"vpc_cidr": page.request.field("vpc_cidr")}
    try:
        out = page.call("CreateVpc", {"CidrBlock": values["vpc_cidr"]})
    except ApiError as err:
        return _list(page, err.status, values={**values, "subnet_vpc": "", "subnet_cidr": ""},
                     errors=error_on(err, VPC_FIELDS))
    return page.done("/vpcs", f"Created {out['Vpc']['VpcId']} ({values['vpc_cidr']})")


@route("POST", "/subnets")
def create_subnet(page: Page) -> Response:
    values = {"vpc_cidr": "", "subnet_vpc": page.request.field("subnet_vpc"),
              "subnet_cidr": page.request.field("subnet_cidr")}
    try:
        out = page.call("CreateSubnet", {"VpcId": values["subnet_vpc"],
                                         "CidrBlock": values["subnet_cidr"]})
    except ApiError as err:
        return _list(page, err.status, values=values, errors=error_on(err, SUBNET_FIELDS))
    return page.done("/vpcs", f"Created {out['Subnet']['SubnetId']} ({values['subnet_cidr']})")


@route("POST", "/vpcs/{vpc_id}/delete")
def delete_vpc(page: Page, vpc_id: str) -> Response:
    return _delete(page, "VPC", vpc_id, "DeleteVpc", {"VpcId": vpc_id}, f"/vpcs/{vpc_id}/delete")


@route("POST", "/subnets/{subnet_id}/delete")
def delete_subnet(page: Page, subnet_id: str) -> Response:
    return _delete(page, "subnet", subnet_id, "DeleteSubnet", {"SubnetId": subnet_id},
                   f"/subnets/{subnet_id}/delete")


def _delete(page: Page, kind: str, name: str, action: str, params: dict[str, str],
            path: str) -> Response:
    if (ask := page.unconfirmed(kind=kind, name=name, action=path, back="/vpcs")) is not None:
        return ask
    return page.change(action, params, "/vpcs", f"Deleted {kind} {name}")
