"""HAProxy's configuration for one load balancer, and its health report.

Application load balancers run in `mode http` (X-Forwarded-For/-Proto/-Port added as ALB
does, fixed responses and redirects answered by the proxy itself); network load
balancers in `mode tcp`. Health checks follow the target group: interval, timeout,
healthy/unhealthy thresholds, HTTP path and the status codes it accepts.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
from pathlib import Path

from gureum.agent.contract import (
    Backend,
    Condition,
    Frontend,
    HealthCheck,
    LoadBalancerSpec,
    Route,
    Server,
)

TRANSITION_CHECK = "500ms"


def _quote(text: str) -> str:
    """A double-quoted HAProxy word. A raw line break would end the config line (and make
    the whole config invalid): control characters travel as HAProxy's escapes."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def status_regex(matcher: str) -> str:
    """AWS's HttpCode ("200", "200-299", "200,302") as a regex on the status code."""
    alternatives = []
    for part in matcher.split(","):
        low, _, high = part.partition("-")
        codes = range(int(low), int(high or low) + 1)
        alternatives += [str(c) for c in codes]
    return "^(" + "|".join(alternatives) + ")$"


def _health_lines(hc: HealthCheck, mode: str) -> list[str]:
    lines = [f"  timeout check {hc.timeout}s", f"  default-server {_check_timing(hc)}"]
    if hc.protocol in ("HTTP", "HTTPS") and hc.path:
        lines += [f"  option httpchk GET {hc.path}",
                  f"  http-check expect rstatus {status_regex(hc.matcher or '200')}"]
        if mode == "tcp":
            lines.insert(0, "  # HTTP checks of a TCP target group")
    return lines


def _check_timing(hc: HealthCheck) -> str:
    """The target group's interval and thresholds. A server in transition (a new one not
    yet up, or one failing) is checked every TRANSITION_CHECK instead: a new target takes
    traffic within a second of its app answering, and a failing one leaves sooner."""
    return (f"inter {hc.interval}s fastinter {TRANSITION_CHECK} downinter {TRANSITION_CHECK} "
            f"fall {hc.unhealthy} rise {hc.healthy}")


def server_args(backend: Backend, server: Server) -> str:
    """A server's settings, whole: servers added at run time ignore `default-server`."""
    hc = backend.health
    port = f" port {hc.port}" if hc.port else ""
    # A draining server takes no new requests; those in flight finish.
    weight = " weight 0" if server.draining else ""
    cookie = f" cookie {server.name}" if backend.sticky_seconds else ""
    # HTTPS targets: encrypted, not verified (as ALB does with targets' certificates).
    tls = " ssl verify none" if backend.protocol == "HTTPS" else ""
    slow = f" slowstart {backend.slow_start}s" if backend.slow_start else ""
    return (f"{server.address}:{server.port} check {_check_timing(hc)}"
            f"{port}{tls}{cookie}{slow}{weight}")


def _backend(backend: Backend, mode: str) -> list[str]:
    balance = "leastconn" if backend.algorithm == "least_outstanding_requests" else "roundrobin"
    lines = [f"backend {backend.name}", f"  mode {mode}", f"  balance {balance}"]
    lines += _health_lines(backend.health, mode)
    if backend.sticky_seconds and mode == "http":  # ALB's duration-based stickiness
        lines.append(f"  cookie AWSALB insert indirect nocache maxlife "
                     f"{backend.sticky_seconds}s")
    lines += [f"  server {server.name} {server_args(backend, server)}"
              for server in backend.servers]
    return lines


def glob_regex(pattern: str, anchored: bool = True) -> str:
    """AWS's wildcard pattern as a regex without backslashes (HAProxy's parser would
    take them as its own escapes): specials become one-character classes."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char in ".+()[]{}|$":
            out.append("[" + char + "]" if char != "]" else "[]]")
        else:
            out.append(char)
    body = "".join(out)
    return f"^{body}$" if anchored else body


def condition_acls(cond: Condition) -> list[str]:
    """One condition as anonymous ACLs (`{ fetch -m method pattern ... }`), one per
    alternative: a single ACL already matches any of its patterns."""
    if cond.field == "path-pattern":
        return ["{ path -m reg " + " ".join(glob_regex(v) for v in cond.values) + " }"]
    if cond.field == "host-header":
        return ["{ req.hdr(host),field(1,:) -m reg -i "
                + " ".join(glob_regex(v) for v in cond.values) + " }"]
    if cond.field == "http-header":
        return [f"{{ req.hdr({cond.header}) -m reg -i "
                + " ".join(glob_regex(v) for v in cond.values) + " }"]
    if cond.field == "http-request-method":
        return ["{ method " + " ".join(cond.values) + " }"]
    if cond.field == "source-ip":
        return ["{ src " + " ".join(cond.values) + " }"]
    # query-string: any of the pairs; a pair without key matches any parameter's value.
    return [f"{{ url_param({key}) -m reg {glob_regex(value)} }}" if key else
            "{ query -m reg " + glob_regex(f"*={value}", False) + " }"
            for key, value in cond.pairs]


def rule_alternatives(conditions: tuple[Condition, ...]) -> list[str]:
    """A rule's conditions (AND of ORs) as HAProxy's OR of ANDs (it has no parentheses)."""
    terms = [""]
    for cond in conditions:
        terms = [f"{term} {acl}".strip() for term in terms for acl in condition_acls(cond)]
    return terms


UNROUTED = "!{ var(txn.be) -m found }"


def _http_route(route: Route, index: int, alternatives: list[str]) -> list[str]:
    """First match wins: every line is guarded by the rule's condition and by no earlier
    rule having chosen a backend; fixed responses and redirects end the request at once."""
    guard = " || ".join(f"{alt} {UNROUTED}".strip() for alt in alternatives or [""])
    if route.kind == "fixed-response":
        body = f" string {_quote(route.body)}" if route.body else ""
        ctype = f" content-type {_quote(route.content_type or 'text/plain')}" if body else ""
        return [f"  http-request return status {route.status}{ctype}{body} if {guard}"]
    if route.kind == "redirect":
        assert route.location is not None
        protocol, host, port, path, query = route.location
        base = f"{protocol}://{host}:{port}{path}"
        if query != "%[query]":
            location = base + (f"?{query}" if query else "")
            return [f"  http-request redirect location {_quote(location)} code {route.status} "
                    f"if {guard}"]
        # The request's own query string: a "?" only when there is one, as AWS does.
        with_query = " || ".join(f"{alt} {UNROUTED} {{ query -m len gt 0 }}".strip()
                                 for alt in alternatives or [""])
        return [f"  http-request redirect location {_quote(base + '?%[query]')} "
                f"code {route.status} if {with_query}",
                f"  http-request redirect location {_quote(base)} code {route.status} "
                f"if {guard}"]
    weighted = [(name, weight) for name, weight in route.backends if weight > 0] or \
        list(route.backends)[:1]
    if len(weighted) == 1:
        return [f"  http-request set-var(txn.be) str({weighted[0][0]}) if {guard}"]
    # Weighted target groups: one random draw per request, split by cumulative weight.
    total, edge, var = sum(w for _, w in weighted), 0, f"txn.pick{index}"
    lines = [f"  http-request set-var({var}) rand({total}) if {guard}"]
    # Only this rule's draw decides: the pick variable exists only when it matched.
    for name, weight in weighted:
        edge += weight
        lines.append(f"  http-request set-var(txn.be) str({name}) "
                     f"if {{ var({var}) -m found }} {{ var({var}) -m int lt {edge} }} {UNROUTED}")
    return lines


def certificate_file(directory: Path, port: int, index: int = 0) -> Path:
    """The listener's default certificate (index 0), and its others by SNI."""
    return directory / (f"listener-{port}.pem" if index == 0 else f"listener-{port}-{index}.pem")


def certificates(frontend: Frontend) -> list[str]:
    return [frontend.pem, *frontend.sni_pems] if frontend.pem else []


def _frontend(frontend: Frontend, spec: LoadBalancerSpec, directory: Path) -> list[str]:
    mode = "http" if frontend.protocol in ("HTTP", "HTTPS") else "tcp"
    tls = ""
    pems = certificates(frontend)
    if pems:
        # The digest makes a new certificate a new configuration (and so a reload). The
        # first is served when the client's name (SNI) matches none.
        digest = hashlib.sha256("".join(pems).encode()).hexdigest()[:16]
        files = "".join(f" crt {certificate_file(directory, frontend.port, i)}"
                        for i in range(len(pems)))
        tls = f" ssl{files}  # certificates {digest}"
    lines = [f"frontend listener_{frontend.port}", f"  mode {mode}",
             f"  bind {spec.private_ip}:{frontend.port}{tls}"]
    if mode == "tcp":
        name = frontend.default.backends[0][0]
        return lines + [f"  default_backend {name}"]
    lines += ["  option forwardfor",
              "  http-request set-header X-Forwarded-Proto " + frontend.protocol.lower(),
              f"  http-request set-header X-Forwarded-Port {frontend.port}"]
    for index, rule in enumerate(frontend.rules, start=1):
        lines += _http_route(rule.route, index, rule_alternatives(rule.conditions))
    lines += _http_route(frontend.default, 0, [])
    lines.append("  use_backend %[var(txn.be)] if { var(txn.be) -m found }")
    return lines


def without_servers(spec: LoadBalancerSpec) -> LoadBalancerSpec:
    """The spec minus its servers: what only a reload can change."""
    return dataclasses.replace(spec, backends=tuple(
        dataclasses.replace(b, servers=()) for b in spec.backends))


def render(spec: LoadBalancerSpec, admin_socket: Path) -> str:
    """The configuration; certificates are read from files beside the admin socket."""
    directory = admin_socket.parent
    mode = "http" if spec.mode == "http" else "tcp"
    parts = [
        "# Written by gureum for load balancer " + spec.lb_id + "; do not edit.",
        "global",
        f"  stats socket {admin_socket} mode 600 level admin expose-fd listeners",
        "  maxconn 4096",  # within the host's open-file limit (two descriptors each)
        "  hard-stop-after 5m",  # an old worker draining after a reload ends eventually
        f"  server-state-file {directory / 'servers.state'}",  # health kept across reloads
        "",
        "defaults",
        f"  mode {mode}",
        "  timeout connect 5s",
        f"  timeout client {spec.idle_timeout}s",
        f"  timeout server {spec.idle_timeout}s",
        "  timeout http-request 10s",
        "  option redispatch",
        "  retries 2",
        "  load-server-state-from-file global",
        "",
    ]
    # A network load balancer's traffic is forwarded by its VPC router (agent/lb/nlb.py),
    # the client's address kept; its proxy only runs the health checks.
    for frontend in spec.frontends if spec.mode == "http" else ():
        parts += _frontend(frontend, spec, directory) + [""]
    for backend in spec.backends:
        parts += _backend(backend, "http" if backend.protocol in ("HTTP", "HTTPS") else "tcp")
        parts.append("")
    return "\n".join(parts) + "\n"


def parse_totals(csv_text: str) -> dict[str, float]:
    """`show stat` CSV -> the load balancer's totals, named as CloudWatch names them:
    counters (since the worker started) and gauges (now)."""
    totals = {"RequestCount": 0.0, "ProcessedBytes": 0.0, "ActiveConnectionCount": 0.0,
              "HTTPCode_Target_2XX_Count": 0.0, "HTTPCode_Target_3XX_Count": 0.0,
              "HTTPCode_Target_4XX_Count": 0.0, "HTTPCode_Target_5XX_Count": 0.0,
              "TargetResponseTime": 0.0}
    times = []

    def number(row: dict[str, str], key: str) -> float:
        try:
            return float(row.get(key) or 0)
        except ValueError:
            return 0.0

    for row in csv.DictReader(io.StringIO(csv_text.lstrip("# "))):
        if row.get("svname") == "FRONTEND":
            totals["RequestCount"] += number(row, "req_tot")
            totals["ProcessedBytes"] += number(row, "bin") + number(row, "bout")
            totals["ActiveConnectionCount"] += number(row, "scur")
        elif row.get("svname") == "BACKEND":
            # Per target group too: RequestCountPerTarget divides it by healthy targets.
            totals[f"RequestCount/{row.get('pxname', '')}"] = number(row, "req_tot")
            for klass in ("2", "3", "4", "5"):
                totals[f"HTTPCode_Target_{klass}XX_Count"] += number(row, f"hrsp_{klass}xx")
            if number(row, "rtime"):
                times.append(number(row, "rtime") / 1000)  # ms, over recent requests
    totals["TargetResponseTime"] = max(times, default=0.0)
    return totals


def parse_stat(csv_text: str) -> dict[str, dict[str, list[str]]]:
    """`show stat` CSV -> backend -> server -> [status, last check status]."""
    text = csv_text.lstrip("# ")
    report: dict[str, dict[str, list[str]]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        server = row.get("svname", "")
        if server in ("FRONTEND", "BACKEND", ""):
            continue
        status = re.sub(r"\s.*", "", row.get("status", "")) or "INIT"
        report.setdefault(row["pxname"], {})[server] = [status, row.get("check_status", "")]
    return report
