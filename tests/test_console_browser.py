"""The web console in a real browser (Debian's chromium driven by Playwright) against a
real `gureum up`: sign in with the printed link, launch from the wizard and watch the
instance turn running without a reload, read its console output, open a port with a
security-group rule (checked from the host), a forged cross-site form refused, a second
account seeing nothing, terminate. Screenshots go to tests/artifacts/console/."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import VENV_BIN, wait_state

from gureum.testing import Server, free_port, tcp_open, wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
# The system browser, fully offline: no first-run, sync, component or QUIC traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).parent / "artifacts" / "console"
USER_DATA = "#!/bin/sh\ncd /tmp; nohup python3 -m http.server 8080 </dev/null >/dev/null 2>&1 &\n"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")


def sign_in_link(server: Server) -> str:
    """The one-time link `gureum up` printed."""
    found = re.findall(r"web console: (http://\S+)", (server.data_dir / "server.out").read_text())
    assert found, "gureum up printed no console link"
    return found[-1]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(sign_in_link(server))
    yield page
    context.close()


@pytest.fixture
def forger() -> Iterator[tuple[str, dict[str, str]]]:
    """Another site on this host (same site, other origin: cookies are not isolated by
    port) whose page posts a form to the console as soon as it loads."""
    form: dict[str, str] = {}

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            fields = "".join(f'<input name="{k}" value="{v}">' for k, v in form.items()
                             if k != "action")
            body = (f'<form id="f" method="post" action="{form["action"]}">{fields}</form>'
                    '<script>document.getElementById("f").submit()</script>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", free_port()), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{evil.server_port}/", form
    evil.shutdown()
    evil.server_close()


def shot(page, name: str) -> None:  # noqa: ANN001
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_console_end_to_end(page, server, ec2, image_id, key_pair, forger, browser):  # noqa: ANN001
    endpoint = server.endpoint
    expect(page.get_by_role("heading", name="Instances")).to_be_visible()
    assert page.url == f"{endpoint}/console/instances"
    shot(page, "01-instances-empty")

    # A security group for the web server, made in the console.
    page.goto(f"{endpoint}/console/security-groups")
    page.get_by_label("Name", exact=True).fill("console-web")
    page.get_by_label("Description").fill("web from the console")
    page.get_by_role("button", name="Create security group").click()
    expect(page.locator(".flash")).to_contain_text("Created security group console-web")
    group_id = page.url.rsplit("/", 1)[1]
    default_group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0][
        "GroupId"]

    # The launch wizard.
    page.goto(f"{endpoint}/console/instances")
    page.get_by_role("link", name="Launch instance").click()
    page.get_by_label("Name", exact=True).fill("console-web-1")
    page.get_by_label("Image").select_option(image_id)
    page.get_by_label("Instance type").select_option("t3.micro")
    page.get_by_label("Key pair").select_option(key_pair[0])
    page.locator(f"#g-{group_id}").check()
    page.locator(f"#g-{default_group}").check()
    page.get_by_label("User data").fill(USER_DATA)
    shot(page, "02-launch-wizard")
    page.get_by_role("button", name="Launch", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Launching i-")
    instance_id = re.search(r"i-[0-9a-f]+", page.locator(".flash").inner_text()).group(0)

    # Running appears without a reload: the page's own marker survives.
    page.evaluate("window.stillTheSamePage = true")
    state = page.locator(f"#row-{instance_id} [data-state]")
    expect(state).to_have_text("running", timeout=60_000)
    assert page.evaluate("window.stillTheSamePage") is True
    shot(page, "03-instances-running")
    ip = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "PublicIpAddress"]

    # Its page: the exact ssh command, then the console output.
    page.get_by_role("link", name=instance_id).click()
    expect(page.locator("#ssh-1")).to_have_value(f"ssh -i {key_pair[0]}.pem ec2-user@{ip}")
    shot(page, "04-instance")
    page.get_by_role("link", name="Console output").click()
    assert wait_for(lambda: "No output yet." not in (
        page.reload() and page.locator("pre.console").inner_text()), 20, interval=1)
    shot(page, "05-console-output")

    # A rule with AWS's validation error at the field, then one that opens the port.
    assert wait_for(lambda: _serving(server, key_pair, ip), 30, interval=0.5)
    assert not tcp_open(ip, 8080)
    page.goto(f"{endpoint}/console/security-groups/{group_id}")
    form = page.locator("#add-ingress")
    form.get_by_label("Port range").fill("8080-70000")
    form.get_by_role("button", name="Add rule").click()
    expect(page.locator("#ingress-ports-error")).to_contain_text("InvalidParameterValue")
    shot(page, "06-rule-error")
    form = page.locator("#add-ingress")
    form.get_by_label("Port range").fill("8080")
    form.get_by_role("button", name="Add rule").click()
    expect(page.locator(".flash")).to_contain_text("Added ingress rule tcp 8080 0.0.0.0/0")
    assert wait_for(lambda: tcp_open(ip, 8080), 5)
    shot(page, "07-rule-added")

    # A cross-site form (another origin on this host) is refused; nothing happens.
    url, form_fields = forger
    form_fields.update(action=f"{endpoint}/console/instances/{instance_id}/terminate",
                       confirm="yes", csrf_token="guessed")
    page.goto(url)
    expect(page.locator("body")).to_contain_text("Refused")
    shot(page, "08-forged-post-refused")
    assert wait_state(ec2, instance_id, "running")

    # Another account sees none of it.
    creds = json.loads(subprocess.run(
        [str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir), "account", "create",
         "console-b"], capture_output=True, text=True, check=True).stdout)
    other = browser.new_context()
    other_page = other.new_page()
    other_page.goto(f"{endpoint}/console/instances")
    other_page.get_by_label("Access key ID").fill(creds["AccessKeyId"])
    other_page.get_by_label("Secret access key").fill(creds["SecretAccessKey"])
    other_page.get_by_role("button", name="Sign in").click()
    expect(other_page.get_by_role("heading", name="Instances")).to_be_visible()
    expect(other_page.locator("#instance-rows")).to_contain_text("No instances")
    other_page.goto(f"{endpoint}/console/security-groups")
    expect(other_page.locator("main")).not_to_contain_text("console-web")
    shot(other_page, "09-second-account")
    other.close()

    # Its CPU graph has points by now (measured every 2 s by this server).
    page.goto(f"{endpoint}/console/instances/{instance_id}")
    expect(page.locator("#cpu svg polyline")).to_have_count(1, timeout=30_000)
    shot(page, "09b-cpu-graph")

    # Tags edited on its page: AWS's error at the field, then a tag saved and removed.
    tagging = page.get_by_role("form", name="Add or change a tag")
    tagging.get_by_label("Key", exact=True).fill("aws:owner")
    tagging.get_by_role("button", name="Save tag").click()
    expect(page.locator("#tag_key-error")).to_contain_text("InvalidParameterValue")
    shot(page, "11-tag-error")
    tagging = page.get_by_role("form", name="Add or change a tag")
    tagging.get_by_label("Key", exact=True).fill("env")
    tagging.get_by_label("Value", exact=True).fill("prod")
    tagging.get_by_role("button", name="Save tag").click()
    expect(page.locator(".flash")).to_contain_text(f"Tagged instance {instance_id}: env=prod")
    expect(page.locator("#tags")).to_contain_text("prod")
    shot(page, "12-tagged")
    page.get_by_role("button", name="Remove tag env").click()
    expect(page.locator("#tags")).not_to_contain_text("prod")

    elb = server.client("elbv2")
    try:
        _load_balance(page, endpoint, ec2, instance_id)
    finally:  # a failure above leaves no load balancer behind (a process on the host)
        for lb in elb.describe_load_balancers()["LoadBalancers"]:
            elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])

    # Terminate, confirmed, and watch it go.
    page.get_by_role("button", name="Terminate").click()
    page.get_by_role("button", name="Yes, terminate").click()
    expect(page.locator(".flash")).to_contain_text(f"Terminating {instance_id}")
    expect(page.locator("#summary [data-state]")).to_have_text("terminated", timeout=60_000)
    shot(page, "10-terminated")
    page.goto(f"{endpoint}/console/security-groups/{group_id}")
    page.get_by_role("button", name="Delete group").click()
    page.get_by_role("button", name="Yes, delete").click()


def _load_balance(page, endpoint: str, ec2, instance_id: str) -> None:  # noqa: ANN001
    """A target group with a quick health check and an ALB forwarding to it, made in the
    console; the instance registered and seen turning healthy without a reload; both
    deleted again."""
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"][0]
    page.goto(f"{endpoint}/console/target-groups")
    form = page.get_by_role("form", name="Create a target group")
    form.get_by_label("Name", exact=True).fill("console-tg")
    form.locator("#f-port").fill("8080")
    form.get_by_label("VPC").select_option(subnet["VpcId"])
    form.get_by_label("Interval (s)").fill("5")
    form.get_by_label("Timeout (s)").fill("2")
    form.get_by_label("Healthy after (checks)", exact=True).fill("2")
    form.get_by_role("button", name="Create target group").click()
    expect(page.locator(".flash")).to_contain_text("Created target group console-tg")

    page.goto(f"{endpoint}/console/load-balancers")
    form = page.get_by_role("form", name="Create a load balancer")
    form.get_by_label("Name", exact=True).fill("console-lb")
    form.locator(f'input[name=subnets][value="{subnet["SubnetId"]}"]').check()
    form.get_by_role("button", name="Create load balancer").click()
    expect(page.locator(".flash")).to_contain_text("Created load balancer console-lb")
    listener = page.get_by_role("form", name="Add a listener")
    listener.get_by_label("Port").fill("abc")
    listener.get_by_label("Forward to target group").select_option(label="console-tg (HTTP:8080)")
    listener.get_by_role("button", name="Add listener").click()
    expect(page.locator("#port-error")).to_contain_text("InvalidParameterValue")
    listener = page.get_by_role("form", name="Add a listener")
    listener.get_by_label("Port").fill("80")
    listener.get_by_role("button", name="Add listener").click()
    expect(page.locator(".flash")).to_contain_text("Added listener HTTP:80 to console-lb")
    shot(page, "13-load-balancer")

    page.get_by_role("link", name="console-tg").first.click()
    page.get_by_label("Instance", exact=True).select_option(instance_id)
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".flash")).to_contain_text(f"Registered {instance_id}")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#target-health [data-health]")).to_have_text("healthy", timeout=45_000)
    assert page.evaluate("window.stillTheSamePage") is True
    shot(page, "14-target-healthy")

    page.goto(f"{endpoint}/console/load-balancers/console-lb")
    page.get_by_role("button", name="Delete load balancer").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.locator(".flash")).to_contain_text("Deleted load balancer console-lb")
    page.goto(f"{endpoint}/console/target-groups/console-tg")
    page.get_by_role("button", name="Delete target group").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.locator(".flash")).to_contain_text("Deleted target group console-tg")
    page.goto(f"{endpoint}/console/instances/{instance_id}")


def _serving(server: Server, key_pair: tuple[str, Path], ip: str) -> bool:
    """Whether the web server of the user data listens (seen from inside, over SSH)."""
    from gureum.testing import ssh
    out = ssh(key_pair[1], ip, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -c ':1F90 '",
              check=False, timeout=10)
    return out.returncode == 0 and out.stdout.strip() not in ("", "0")


def test_page_loads_are_quick(page, server):  # noqa: ANN001
    started = time.monotonic()
    response = page.goto(f"{server.endpoint}/console/instances")
    assert response is not None and response.status == 200
    timing = response.headers["server-timing"]
    assert float(timing.split("dur=")[1]) < 300
    loaded = page.evaluate("performance.getEntriesByType('navigation')[0]"
                           ".domContentLoadedEventEnd")
    assert loaded < 1000, loaded
    assert time.monotonic() - started < 5


PAGES = ["images", "key-pairs", "security-groups", "vpcs", "addresses", "volumes",
         "load-balancers", "target-groups", "auto-scaling", "alarms", "apps"]


def test_every_page_on_a_laptop_and_a_phone(page, server, browser):  # noqa: ANN001
    for name in PAGES:
        response = page.goto(f"{server.endpoint}/console/{name}")
        assert response is not None and response.status == 200, name
        expect(page.locator("nav a[aria-current=page]")).to_have_count(1)
        shot(page, f"page-{name}")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                has_touch=True)
    try:
        small = phone.new_page()
        sign_in_with_key(small, server)
        for name in ["instances", "instances/launch", "security-groups", "load-balancers",
                     "auto-scaling"]:
            small.goto(f"{server.endpoint}/console/{name}")
            # Wide tables scroll inside their box; the page itself never scrolls sideways.
            assert small.evaluate("document.documentElement.scrollWidth <= innerWidth + 1"), name
            shot(small, f"phone-{name.replace('/', '-')}")
    finally:
        phone.close()


def sign_in_with_key(page, server: Server) -> None:  # noqa: ANN001
    """Sign in with the default account's access key (the printed link is spent)."""
    access, secret = server.credentials()
    page.goto(f"{server.endpoint}/console/signin")
    page.get_by_label("Access key ID").fill(access)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Instances")).to_be_visible()


def test_keyboard_sign_in_and_key_pair_download(browser, server):  # noqa: ANN001
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(f"{server.endpoint}/console/key-pairs")  # signed out: the sign-in form
        access, secret = server.credentials()
        expect(page.get_by_label("Access key ID")).to_be_focused()  # typing goes there
        page.keyboard.type(access)
        page.keyboard.press("Tab")
        page.keyboard.type(secret)
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{server.endpoint}/console/key-pairs")
        page.get_by_label("New key pair name").fill("console-dl")
        page.get_by_role("button", name="Create key pair").click()
        material = page.get_by_label(re.compile("Private key")).input_value()
        assert "PRIVATE KEY" in material
        with page.expect_download() as download:
            page.get_by_role("link", name="Download console-dl.pem").click()
        assert download.value.suggested_filename == "console-dl.pem"
        assert Path(download.value.path()).read_text() == material
        shot(page, "key-pair-created")
        page.goto(f"{server.endpoint}/console/key-pairs")
        assert "PRIVATE KEY" not in page.content()  # shown once
    finally:
        context.close()


def test_a_restart_keeps_the_session_and_console_link_signs_in(page, server, browser):  # noqa: ANN001
    """Last: it restarts the server. The signed-in page carries on after the restart (its
    forms too: the CSRF token is the session's), and a link minted on the host by
    `gureum console-link` signs a new browser in."""
    page.goto(f"{server.endpoint}/console/key-pairs")
    expect(page.get_by_role("heading", name="Key pairs")).to_be_visible()
    server.stop()
    server.start()
    page.get_by_label("New key pair name").fill("after-restart")
    page.get_by_role("button", name="Create key pair").click()  # a form from before
    expect(page.get_by_label(re.compile("Private key"))).to_have_value(re.compile("PRIVATE KEY"))
    link = subprocess.run([str(VENV_BIN / "gureum"), "console-link"], env=server.env,
                          capture_output=True, text=True, check=True).stdout.strip()
    fresh = browser.new_context()
    try:
        other = fresh.new_page()
        other.goto(link)
        expect(other.get_by_role("heading", name="Instances")).to_be_visible()
        shot(other, "15-console-link-after-restart")
        other.goto(link)  # once only
        expect(other.locator(".form-error")).to_contain_text("already used")
    finally:
        fresh.close()
    server.client().delete_key_pair(KeyName="after-restart")
