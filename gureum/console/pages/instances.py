"""Instances: the list (filter, live states), the launch wizard, one instance's page
with its ssh command and state actions (confirmed), and its console output."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from gureum.console import csrf
from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.monitoring import instance_cpu_chart
from gureum.console.pages.tags import EC2, Taggable, editor, register
from gureum.console.routing import route
from gureum.errors import ApiError

STATES = ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]
# State actions: (API action, what the flash says it is doing, asks to confirm first).
VERBS = {"stop": ("StopInstances", "Stopping", True),
         "start": ("StartInstances", "Starting", False),
         "reboot": ("RebootInstances", "Rebooting", True),
         "terminate": ("TerminateInstances", "Terminating", True)}
LAUNCH_FIELDS = {"InvalidAMIID": "image_id", "~image": "image_id",
                 "InvalidInstanceType": "instance_type", "InsufficientInstanceCapacity":
                 "instance_type", "~instance type": "instance_type", "~InstanceType": "instance_type",
                 "InvalidKeyPair": "key_name", "~key pair": "key_name",
                 "InvalidSubnetID": "subnet_id", "~subnet": "subnet_id",
                 "InvalidGroup": "group_ids", "InvalidSecurityGroupID": "group_ids",
                 "~security group": "group_ids", "InvalidUserData": "user_data",
                 "~user data": "user_data", "~MinCount": "count", "~MaxCount": "count",
                 "InstanceLimitExceeded": "count", "InvalidTag": "name", "~tag": "name"}


def verbs_for(state: str) -> list[str]:
    """The state actions offered in a state (the API answers the others with
    IncorrectInstanceState; no point offering them)."""
    return {"pending": ["stop", "terminate"], "running": ["stop", "reboot", "terminate"],
            "stopping": ["terminate"], "stopped": ["start", "terminate"]}.get(state, [])


@dataclass
class Row:
    """One instance as the list shows it."""

    id: str
    name: str
    state: str
    type: str
    private_ip: str
    public_ip: str
    public_dns: str
    zone: str
    launched: Any
    tags: list[tuple[str, str]]

    @classmethod
    def of(cls, inst: dict[str, Any]) -> Row:
        tags = [(t["Key"], t["Value"]) for t in inst.get("Tags") or []]
        return cls(inst["InstanceId"], dict(tags).get("Name", ""), inst["State"]["Name"],
                   inst["InstanceType"], inst.get("PrivateIpAddress", ""),
                   inst.get("PublicIpAddress", ""), inst.get("PublicDnsName", ""),
                   inst.get("Placement", {}).get("AvailabilityZone", ""),
                   inst.get("LaunchTime"), tags)

    def matches(self, text: str) -> bool:
        words = [self.id, self.name, self.state, self.type, self.private_ip, self.public_ip,
                 self.public_dns, self.zone, *(f"{k}={v}" for k, v in self.tags)]
        return text.lower() in " ".join(words).lower()


def instances(page: Page, **params: Any) -> list[dict[str, Any]]:
    out = page.call("DescribeInstances", params)
    return [i for r in out["Reservations"] for i in r["Instances"]]


def _rows(page: Page) -> tuple[list[Row], str, str]:
    """The list's rows with the page's filters: the state through DescribeInstances' own
    filter, the text over what the list shows."""
    text, state = page.request.arg("q").strip(), page.request.arg("state")
    params = {"Filters": [{"Name": "instance-state-name", "Values": [state]}]} if state else {}
    rows = [Row.of(i) for i in instances(page, **params)]
    rows.reverse()  # newest first
    return [r for r in rows if not text or r.matches(text)], text, state


@route("GET", "/instances")
def list_instances(page: Page) -> Response:
    rows, text, state = _rows(page)
    return page.render("instances.html", rows=rows, q=text, state=state, states=STATES)


@route("GET", "/instances/rows")
def list_rows(page: Page) -> Response:
    """The list's rows alone: what the page fetches every two seconds."""
    rows, _, _ = _rows(page)
    return page.fragment("_instance_rows.html", rows=rows)


def choices(page: Page) -> dict[str, Any]:
    """What the wizard offers: the account's images, types that fit the host, key pairs,
    subnets and security groups, each as its describe call lists them."""
    offered = page.call("DescribeInstanceTypeOfferings")["InstanceTypeOfferings"]
    return {
        "images": page.call("DescribeImages")["Images"],
        "types": sorted({o["InstanceType"] for o in offered}, key=_type_order),
        "key_pairs": page.call("DescribeKeyPairs")["KeyPairs"],
        "subnets": page.call("DescribeSubnets")["Subnets"],
        "groups": page.call("DescribeSecurityGroups")["SecurityGroups"],
    }


def _type_order(name: str) -> tuple[str, int, str]:
    family, _, size = name.partition(".")
    sizes = ["nano", "micro", "small", "medium", "large", "xlarge"]
    return family, sizes.index(size) if size in sizes else len(sizes), size


def wizard_defaults(page: Page, images: list[dict[str, Any]]) -> dict[str, Any]:
    standard = next((i["ImageId"] for i in images if "systemd" in i.get("Description", "")),
                    images[0]["ImageId"] if images else "")
    return {"image_id": page.request.arg("image_id") or standard, "instance_type": "t3.micro",
            "key_name": "", "subnet_id": "", "group_ids": [], "user_data": "", "name": "",
            "count": "1"}


@route("GET", "/instances/launch")
def launch_form(page: Page) -> Response:
    offered = choices(page)
    return page.render("launch.html", values=wizard_defaults(page, offered["images"]),
                       **offered)


def wizard_values(page: Page) -> dict[str, Any]:
    """The wizard's fields as the browser sent them."""
    f = page.request
    return {"image_id": f.field("image_id"), "instance_type": f.field("instance_type"),
            "key_name": f.field("key_name"), "subnet_id": f.field("subnet_id"),
            "group_ids": f.fields("group_ids"),
            # Browsers send a textarea's lines ending in CRLF: a shebang line ending in
            # CR names an interpreter that does not exist.
            "user_data": f.form.get("user_data", [""])[0].replace("\r\n", "\n"),
            "name": f.field("name"), "count": f.field("count") or "1"}


def instance_params(values: dict[str, Any]) -> dict[str, Any]:
    """What the wizard asks of an instance, as RunInstances and a launch template's data
    both name it (the count and subnet are RunInstances' own)."""
    params: dict[str, Any] = {"ImageId": values["image_id"],
                              "InstanceType": values["instance_type"]}
    if values["key_name"]:
        params["KeyName"] = values["key_name"]
    if values["group_ids"]:
        params["SecurityGroupIds"] = values["group_ids"]
    if values["user_data"].strip():
        # As boto3 and the AWS CLI do: the API takes user data base64-encoded.
        params["UserData"] = base64.b64encode(values["user_data"].encode()).decode()
    if values["name"]:
        params["TagSpecifications"] = [{"ResourceType": "instance",
                                        "Tags": [{"Key": "Name", "Value": values["name"]}]}]
    return params


@route("POST", "/instances/launch")
def launch(page: Page) -> Response:
    values = wizard_values(page)
    params = {**instance_params(values), "MinCount": values["count"],
              "MaxCount": values["count"]}
    if values["subnet_id"]:
        params["SubnetId"] = values["subnet_id"]
    try:
        out = page.call("RunInstances", params)
    except ApiError as err:
        return page.render("launch.html", status=err.status, values=values,
                           errors=error_on(err, LAUNCH_FIELDS), **choices(page))
    launched = ", ".join(i["InstanceId"] for i in out["Instances"])
    return page.done("/instances", f"Launching {launched}")


def _one(page: Page, instance_id: str) -> dict[str, Any]:
    return instances(page, InstanceIds=[instance_id])[0]


def ssh_commands(inst: dict[str, Any]) -> list[str]:
    """How to log in: plain ssh to the public address with the launch key, and
    `gureum ssh`, which also reaches private-only instances (through the VPC's router)."""
    key = f"{inst['KeyName']}.pem" if inst.get("KeyName") else "KEY.pem"
    commands = []
    if inst.get("PublicIpAddress"):
        commands.append(f"ssh -i {key} ec2-user@{inst['PublicIpAddress']}")
    commands.append(f"gureum ssh {inst['InstanceId']}")
    return commands


@route("GET", "/instances/{instance_id}")
def show(page: Page, instance_id: str, status: int = 200, **context: Any) -> Response:
    inst = _one(page, instance_id)
    context.setdefault("tagging", editor(page, "instance", instance_id))
    return page.render("instance.html", status=status, inst=inst, row=Row.of(inst),
                       ssh=ssh_commands(inst), verbs_for=verbs_for,
                       cpu=instance_cpu_chart(page, instance_id), **context)


register("instance", Taggable("instance", "Instances", EC2, lambda i: f"/instances/{i}", show))


@route("GET", "/instances/{instance_id}/summary")
def summary(page: Page, instance_id: str) -> Response:
    """The instance's state and addresses alone, refreshed live on its page."""
    inst = _one(page, instance_id)
    return page.fragment("_instance_summary.html", inst=inst, row=Row.of(inst),
                         ssh=ssh_commands(inst), verbs_for=verbs_for, csrf_field=csrf.FIELD,
                         csrf_token=page.session.csrf_token)


@route("POST", "/instances/{instance_id}/{verb}")
def change_state(page: Page, instance_id: str, verb: str) -> Response:
    if verb not in VERBS:
        return Response.text(404, "No such instance action")
    action, doing, confirm = VERBS[verb]
    if confirm and page.request.field("confirm") != "yes":
        inst = _one(page, instance_id)
        return page.render("confirm.html", inst=inst, row=Row.of(inst), verb=verb)
    return page.change(action, {"InstanceIds": [instance_id]}, f"/instances/{instance_id}",
                       f"{doing} {instance_id}")


@route("GET", "/instances/{instance_id}/console-output")
def console_output(page: Page, instance_id: str) -> Response:
    out = page.call("GetConsoleOutput", {"InstanceId": instance_id})
    text = base64.b64decode(out["Output"]).decode("utf-8", "replace") if out.get("Output") else ""
    return page.render("console_output.html", instance_id=instance_id, output=text,
                       timestamp=out.get("Timestamp"))
