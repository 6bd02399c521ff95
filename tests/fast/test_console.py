"""The web console over plain HTTP against the in-process cloud: sign-in, sessions, CSRF,
account isolation, pages, and API errors shown at the field they concern."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gureum.cli.console_link import sign_in_url
from gureum.console import Console
from gureum.console.sessions import (
    IDLE_SECONDS,
    RENEW_SECONDS,
    REVOKED_FILE,
    USED_LINKS_FILE,
    Sessions,
)
from gureum.console.signing import KEY_FILE
from gureum.console.spent import SpentIds
from gureum.console.testing import ConsoleClient
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud


def signed_in(fast: FastCloud, account_id: str | None = None) -> ConsoleClient:
    client = ConsoleClient(fast.port)
    url = fast.running.server.console.sign_in_url(account_id or fast.running.account_id)
    assert client.sign_in_link(url).status == 303
    client.get("/console/instances")
    return client


@pytest.fixture(scope="module")
def console(fast: FastCloud) -> ConsoleClient:
    return signed_in(fast)


@pytest.fixture(scope="module")
def other(fast: FastCloud) -> tuple[ConsoleClient, str]:
    """A second account, signed in with its access key and secret."""
    account_id, access, secret = fast.cloud.create_account("console-other")
    client = ConsoleClient(fast.port)
    answer = client.sign_in_key(access, secret)
    assert answer.status == 303 and answer.headers["location"] == "/console/instances"
    client.get("/console/instances")
    return client, account_id


def instance_ids(text: str) -> list[str]:
    return re.findall(r'<tr id="row-(i-[0-9a-f]+)"', text)


def field_error(text: str, field: str) -> str:
    found = re.search(rf'id="{field}-error" role="alert">([^<]*)<', text)
    return found.group(1) if found else ""


def launch(console: ConsoleClient, image_id: str, **form: str) -> str:
    before = set(instance_ids(console.get("/console/instances").text))
    console.get("/console/instances/launch")
    answer = console.post("/console/instances/launch", {
        "image_id": image_id, "instance_type": "t3.micro", "count": "1", **form})
    assert answer.status == 303, answer.text
    (new,) = set(instance_ids(console.get("/console/instances").text)) - before
    return new


def test_link_signs_in_once_with_a_strict_httponly_cookie(fast):
    client = ConsoleClient(fast.port)
    url = fast.running.server.console.sign_in_url(fast.running.account_id)
    answer = client.sign_in_link(url)
    assert answer.status == 303
    (cookie,) = answer.set_cookies
    flags = {part.strip().split("=")[0] for part in cookie.split(";")}
    assert {"HttpOnly", "SameSite", "Path"} <= flags and "SameSite=Strict" in cookie
    assert client.get("/console/instances").status == 200
    again = ConsoleClient(fast.port).sign_in_link(url)  # the link is spent
    assert again.status == 403 and "already used" in again.text


def test_access_key_sign_in_and_wrong_secret(fast):
    client = ConsoleClient(fast.port)
    access, secret = fast.credentials()
    assert client.sign_in_key(access, secret + "x").status == 401
    assert client.session is None
    assert client.sign_in_key(access, secret).status == 303
    assert client.get("/console/instances").status == 200


def test_signed_out_pages_redirect_and_posts_are_refused(fast):
    client = ConsoleClient(fast.port)
    answer = client.get("/console/instances?q=web")
    assert answer.status == 303
    assert answer.headers["location"].startswith("/console/signin?next=%2Fconsole%2Finstances")
    assert client.post("/console/instances/launch", {"image_id": "x"}).status == 403


def test_sign_out_ends_the_session(fast):
    client = signed_in(fast)
    assert client.post("/console/signout").status == 303
    assert client.get("/console/instances").status == 303


def test_forged_posts_are_refused(fast, console, image_id):
    count = len(instance_ids(console.get("/console/instances").text))
    form = {"image_id": image_id, "instance_type": "t3.micro", "count": "1"}
    # No token, a wrong token, the right token from another origin or another site.
    assert console.post("/console/instances/launch", form, csrf=False).status == 403
    assert console.post("/console/instances/launch", {**form, "csrf_token": "x"}).status == 403
    evil = console.post("/console/instances/launch", form,
                        headers={"Origin": "http://127.0.0.1:1"})
    assert evil.status == 403 and "cross-site" in evil.text
    assert console.post("/console/instances/launch", form,
                        headers={"Sec-Fetch-Site": "cross-site"}).status == 403
    assert console.post("/console/instances/launch", form,
                        headers={"Referer": "http://evil.example/x"}).status == 403
    assert console.post("/console/instances/launch", form,
                        headers={"Origin": "null"}).status == 403  # sandboxed or data: pages
    assert len(instance_ids(console.get("/console/instances").text)) == count


def test_a_token_works_only_with_its_own_session(fast, console, image_id):
    stranger = signed_in(fast)  # same account, another session: its token is its own
    form = {"image_id": image_id, "instance_type": "t3.micro", "count": "1",
            "csrf_token": stranger.csrf_token}
    assert console.post("/console/instances/launch", form).status == 403


def test_launch_from_the_wizard_and_watch_it_run(fast, console, image_id, key_pair, ec2):
    page = console.get("/console/instances/launch")
    assert page.status == 200
    for label in ("Image", "Instance type", "Key pair", "Subnet", "User data"):
        assert f">{label}" in page.text
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    instance_id = launch(console, image_id, name="wizard", key_name=key_pair[0],
                         group_ids=group, user_data="#!/bin/sh\r\necho hello\r\n")
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert inst["KeyName"] == key_pair[0] and inst["SecurityGroups"][0]["GroupId"] == group
    assert {"Key": "Name", "Value": "wizard"} in inst["Tags"]
    # User data arrives as boto3 sends it (base64), with the browser's CRLFs made LFs.
    assert base64.b64decode(ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]) == (
        b"#!/bin/sh\necho hello\n")
    # The fragment the page polls shows the state turning running.
    assert wait_for(lambda: 'data-state="running"' in console.get(
        f"/console/instances/rows?q={instance_id}").text, 10)
    detail = console.get(f"/console/instances/{instance_id}")
    assert f"ssh -i {key_pair[0]}.pem ec2-user@{inst['PublicIpAddress']}" in detail.text
    assert f"gureum ssh {instance_id}" in detail.text
    assert console.get(f"/console/instances/{instance_id}/console-output").status == 200
    console.post(f"/console/instances/{instance_id}/terminate", {"confirm": "yes"})


def test_search_and_state_filter(console, image_id):
    instance_id = launch(console, image_id, name="findme-xyz")
    assert instance_ids(console.get("/console/instances?q=FINDME").text) == [instance_id]
    assert instance_id not in console.get("/console/instances?state=stopped").text
    assert instance_ids(console.get("/console/instances?q=findme&state=running").text) in (
        [instance_id], [])  # pending or running by now
    console.post(f"/console/instances/{instance_id}/terminate", {"confirm": "yes"})


def test_launch_errors_are_the_apis_at_their_fields(console, image_id):
    console.get("/console/instances/launch")
    bad_image = console.post("/console/instances/launch", {
        "image_id": "ami-12345678", "instance_type": "t3.micro", "count": "1"})
    assert bad_image.status == 400
    assert field_error(bad_image.text, "image_id").startswith("InvalidAMIID.NotFound")
    bad_type = console.post("/console/instances/launch", {
        "image_id": image_id, "instance_type": "t9.huge", "count": "1"})
    assert field_error(bad_type.text, "instance_type").startswith("InvalidParameterValue")
    bad_key = console.post("/console/instances/launch", {
        "image_id": image_id, "instance_type": "t3.micro", "count": "1", "key_name": "nope"})
    assert field_error(bad_key.text, "key_name").startswith("InvalidKeyPair.NotFound")
    bad_count = console.post("/console/instances/launch", {
        "image_id": image_id, "instance_type": "t3.micro", "count": "many"})
    assert "InvalidParameterValue" in field_error(bad_count.text, "count")
    assert 'value="many"' in bad_count.text  # what was typed stays in the form


def test_state_actions_ask_first(console, image_id, ec2):
    instance_id = launch(console, image_id)
    assert wait_for(lambda: 'data-state="running"' in console.get(
        f"/console/instances/{instance_id}/summary").text, 10)
    ask = console.post(f"/console/instances/{instance_id}/stop")
    assert ask.status == 200 and "Yes, stop" in ask.text
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "running"
    done = console.post(f"/console/instances/{instance_id}/stop", {"confirm": "yes"})
    assert done.status == 303
    assert "Stopping " + instance_id in console.get(done.headers["location"]).text
    assert wait_for(lambda: 'data-state="stopped"' in console.get(
        f"/console/instances/{instance_id}/summary").text, 10)
    assert console.post(f"/console/instances/{instance_id}/start").status == 303  # no question
    console.post(f"/console/instances/{instance_id}/terminate", {"confirm": "yes"})
    assert wait_for(lambda: 'data-state="terminated"' in console.get(
        f"/console/instances/{instance_id}/summary").text, 10)


def test_a_second_account_sees_and_touches_none_of_it(console, other, image_id, ec2):
    instance_id = launch(console, image_id, name="mine")
    client, _ = other
    assert instance_id not in client.get("/console/instances").text
    missing = client.get(f"/console/instances/{instance_id}")
    assert missing.status == 400 and "InvalidInstanceID.NotFound" in missing.text
    client.post(f"/console/instances/{instance_id}/terminate", {"confirm": "yes"})
    assert "InvalidInstanceID.NotFound" in client.get(f"/console/instances/{instance_id}").text
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("pending", "running")
    assert "console-key" not in client.get("/console/key-pairs").text
    console.post(f"/console/instances/{instance_id}/terminate", {"confirm": "yes"})


def test_key_pair_private_key_is_shown_once(console, ec2):
    console.get("/console/key-pairs")
    created = console.post("/console/key-pairs", {"key_name": "console-key",
                                                  "key_type": "ed25519"})
    assert created.status == 200 and "BEGIN OPENSSH PRIVATE KEY" in created.text
    assert 'download="console-key.pem"' in created.text
    assert created.headers["cache-control"] == "no-store"
    listed = console.get("/console/key-pairs").text
    assert "console-key" in listed and "PRIVATE KEY" not in listed
    duplicate = console.post("/console/key-pairs", {"key_name": "console-key"})
    assert field_error(duplicate.text, "key_name").startswith("InvalidKeyPair.Duplicate")
    assert console.post("/console/key-pairs/delete", {"key_name": "console-key",
                                                      "confirm": "yes"}).status == 303
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name",
                                                "Values": ["console-key"]}])["KeyPairs"]


def test_security_group_rules_inline_with_errors_at_the_field(console, ec2):
    console.get("/console/security-groups")
    made = console.post("/console/security-groups", {"group_name": "console-web",
                                                     "description": "from the console"})
    assert made.status == 303
    group_id = made.headers["location"].rsplit("/", 1)[1]
    page = console.get(f"/console/security-groups/{group_id}")
    assert page.status == 200 and "console-web" in page.text
    rules = f"/console/security-groups/{group_id}/rules"
    bad_port = console.post(rules, {"direction": "ingress", "protocol": "tcp", "ports": "abc",
                                    "source": "0.0.0.0/0"})
    assert bad_port.status == 400
    assert "InvalidParameterValue" in field_error(bad_port.text, "ingress-ports")
    bad_cidr = console.post(rules, {"direction": "ingress", "protocol": "tcp", "ports": "80",
                                    "source": "10.0.0.300/8"})
    assert "malformed" in field_error(bad_cidr.text, "ingress-source")
    added = console.post(rules, {"direction": "ingress", "protocol": "tcp",
                                 "ports": "8000-8100", "source": "10.1.0.0/16",
                                 "rule_description": "app"})
    assert added.status == 303
    perms = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0][
        "IpPermissions"]
    assert perms[0]["FromPort"] == 8000 and perms[0]["ToPort"] == 8100
    assert perms[0]["IpRanges"] == [{"CidrIp": "10.1.0.0/16", "Description": "app"}]
    again = console.post(rules, {"direction": "ingress", "protocol": "tcp",
                                 "ports": "8000-8100", "source": "10.1.0.0/16"})
    assert "InvalidPermission.Duplicate" in again.text
    (rule_id,) = re.findall(r'id="rule-(sgr-[0-9a-f]+)"', again.text.split("Outbound")[0])
    assert console.post(f"{rules}/{rule_id}/delete", {"direction": "ingress"}).status == 303
    assert not ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0][
        "IpPermissions"]
    assert console.post(f"/console/security-groups/{group_id}/delete",
                        {"confirm": "yes"}).status == 303


def test_vpcs_subnets_and_addresses(console, ec2):
    console.get("/console/vpcs")
    bad = console.post("/console/vpcs", {"vpc_cidr": "10.0.0.0/8"})
    assert field_error(bad.text, "vpc_cidr").startswith("InvalidVpc.Range")
    assert console.post("/console/vpcs", {"vpc_cidr": "10.77.0.0/16"}).status == 303
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.77.0.0/16"]}])["Vpcs"]
    assert console.post("/console/subnets", {"subnet_vpc": vpc["VpcId"],
                                             "subnet_cidr": "10.77.1.0/24"}).status == 303
    page = console.get("/console/vpcs").text
    assert vpc["VpcId"] in page and "10.77.1.0/24" in page
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"][0]["SubnetId"]
    console.post(f"/console/subnets/{subnet}/delete", {"confirm": "yes"})
    assert console.post(f"/console/vpcs/{vpc['VpcId']}/delete", {"confirm": "yes"}).status == 303
    before = {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}
    assert console.post("/console/addresses").status == 303
    (address,) = [a for a in ec2.describe_addresses()["Addresses"]
                  if a["AllocationId"] not in before]
    assert address["PublicIp"] in console.get("/console/addresses").text
    console.post(f"/console/addresses/{address['AllocationId']}/release", {"confirm": "yes"})
    assert {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]} == before


@pytest.mark.parametrize("path", ["/console/instances", "/console/instances/launch",
                                  "/console/images", "/console/key-pairs",
                                  "/console/security-groups", "/console/vpcs",
                                  "/console/addresses", "/console/load-balancers",
                                  "/console/target-groups", "/console/auto-scaling"])
def test_every_page_renders_with_security_headers(console, path):
    answer = console.get(path)
    assert answer.status == 200, answer.text
    assert "script-src" not in answer.headers["content-security-policy"]  # default-src 'self'
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["server-timing"].startswith("app;dur=")
    assert "<h1>" in answer.text and "<main" in answer.text


def test_static_files_are_served_from_the_package(console):
    page = console.get("/console/instances").text
    (css,) = re.findall(r'href="(/console/static/console\.css\?v=\w+)"', page)
    answer = console.get(css)
    assert answer.status == 200 and "immutable" in answer.headers["cache-control"]
    assert answer.headers["content-type"].startswith("text/css")
    assert console.get("/console/static/../app.py").status == 404


def gureum(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gureum.cli.main", *args],
                          capture_output=True, text=True, timeout=60)


def test_console_link_command_mints_a_link_the_running_server_takes_once(fast):
    made = gureum("--data-dir", str(fast.data_dir), "console-link", "--port", str(fast.port))
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(f"http://127.0.0.1:{fast.port}/console/signin?token=")
    client = ConsoleClient(fast.port)
    assert client.sign_in_link(url).status == 303
    page = client.get("/console/instances")
    assert page.status == 200 and fast.running.account_id in page.text
    assert ConsoleClient(fast.port).sign_in_link(url).status == 403  # used once
    missing = gureum("--data-dir", str(fast.data_dir), "console-link", "--account", "nobody")
    assert missing.returncode == 1 and "no account 'nobody'" in missing.stderr
    for name in (KEY_FILE, USED_LINKS_FILE):
        assert stat.S_IMODE(os.stat(fast.data_dir / name).st_mode) == 0o600


def test_links_expire_and_cannot_be_forged(fast):
    account_id = fast.running.account_id
    expired = sign_in_url(fast.config, account_id, seconds=-1)
    assert ConsoleClient(fast.port).sign_in_link(expired).status == 403
    good = sign_in_url(fast.config, account_id)
    _, expiry, nonce, mac = good.split("token=")[1].split(".")
    other, _ = fast.cloud.create_account("console-forged")[:2]
    for token in (f"{other}.{expiry}.{nonce}.{mac}",  # another account, the same signature
                  f"{account_id}.{int(expiry) + 3600}.{nonce}.{mac}",  # a later expiry
                  f"{account_id}.{expiry}.{nonce}.{mac[:-2]}AA", "garbage"):
        assert ConsoleClient(fast.port).get(f"/console/signin?token={token}").status == 403
    assert ConsoleClient(fast.port).sign_in_link(good).status == 303


@contextmanager
def restarted_console(fast: FastCloud) -> Iterator[Console]:
    """The server's console replaced by a new one, as a restart of `gureum up` makes it
    (nothing of the old one's memory kept); the old one back afterwards."""
    handler = fast.running.server.RequestHandlerClass
    old = handler.console
    handler.console = Console(old.actions.api)
    try:
        yield handler.console
    finally:
        handler.console = old


def test_a_session_survives_a_restart_and_a_sign_out_does_too(fast, image_id):
    client = signed_in(fast)
    form_token = client.csrf_token  # from a page rendered before the restart
    printed = fast.running.server.console.sign_in_url(fast.running.account_id)
    with restarted_console(fast):
        assert ConsoleClient(fast.port).sign_in_link(printed).status == 303  # `gureum up`'s
        assert client.get("/console/key-pairs").status == 200
        made = client.post("/console/key-pairs", {"key_name": "after-restart",
                                                  "key_type": "ed25519",
                                                  "csrf_token": form_token})
        assert made.status == 200 and "after-restart" in made.text
        assert client.post("/console/signout").status == 303
    revoked = stat.S_IMODE(os.stat(fast.data_dir / REVOKED_FILE).st_mode)
    assert revoked == 0o600
    old_cookie = client.session
    with restarted_console(fast):  # the sign-out outlives a restart too
        client.session = old_cookie
        assert client.get("/console/instances").status == 303
    assert ConsoleClient(fast.port).sign_in_link(printed).status == 403  # spent, remembered
    fast.client().delete_key_pair(KeyName="after-restart")


def test_idle_sessions_end_and_active_ones_are_re_signed(tmp_path, monkeypatch):
    sessions = Sessions(tmp_path)
    session = sessions.start("123456789012")
    assert sessions.get(session.cookie).renewed is False
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + RENEW_SECONDS + 1)
    renewed = sessions.get(session.cookie)
    assert renewed.renewed and renewed.cookie != session.cookie
    assert renewed.csrf_token == session.csrf_token  # the same session
    monkeypatch.setattr(time, "time", lambda: now + IDLE_SECONDS + 1)
    assert sessions.get(session.cookie) is None  # idle too long
    assert sessions.get(renewed.cookie) is not None  # its renewal was used since
    tampered = session.cookie.replace("123456789012", "210987654321")
    assert sessions.get(tampered) is None


def test_spent_ids_forget_expired_ones(tmp_path):
    spent = SpentIds(tmp_path / "spent")
    past = time.time() - 1
    for n in range(50):
        spent.spend(f"old{n}", past)
    assert spent.spend("new", time.time() + 60) and not spent.spend("new", time.time() + 60)
    assert "new" in spent and "old1" not in spent
    assert (tmp_path / "spent").read_text().count("\n") < 10
    assert "new" in SpentIds(tmp_path / "spent")  # another process reads the same file
