"""What an app is: read from `gureum.toml`, else detected from the folder.

gureum.toml (every key optional):

    name = "hello"              # the app's name (default: the folder's name)
    start = "python3 app.py"    # run by /bin/sh in the app's folder, PORT in its env
    port = 8000                 # the port the app listens on (given to it as PORT)
    health_path = "/"           # the load balancer's health check path (2xx-3xx = healthy)
    instance_type = "t3.micro"
    min = 2                     # Auto Scaling group size
    max = 4
    grace = 10                  # seconds a new instance has before failed checks count
    domains = ["api.example.com"]   # names of the user's own it also answers to (HTTP, HTTPS)
    certificate = "arn:aws:acm:..." # an ACM certificate for them (default: one the cloud's
                                    # CA signs, trusted by whoever trusts that CA)

    [env]                       # baked into a root-only file of the release image
    GREETING = "hello"

Without a `start`, a Procfile's `web:` line is the start command; else the kind of app
decides: Python (requirements.txt / pyproject.toml: `python3 app.py|main.py|server.py`),
Node (package.json: `scripts.start` when it runs node, else `node <main|server.js|index.js>`),
a static site (index.html: `python3 -m http.server $PORT`).
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gureum.deploy import DeployError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEYS = {"name", "start", "port", "health_path", "instance_type", "min", "max", "grace", "env",
        "domains", "certificate"}
DOMAIN_RE = re.compile(r"^(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")
MAX_DOMAINS = 4  # with the app's own name: ALB's five values per host-header condition
PY_MAINS = ("app.py", "main.py", "server.py")
NODE_MAINS = ("server.js", "index.js", "app.js")


@dataclass
class AppSpec:
    name: str
    root: Path
    kind: str  # python | node | static | other
    start: str
    port: int = 8000
    health_path: str = "/"
    instance_type: str = "t3.micro"
    min_size: int = 2
    max_size: int = 4
    grace: int = 10
    env: dict[str, str] = field(default_factory=dict)
    domains: list[str] = field(default_factory=list)
    certificate: str | None = None


def check_domains(domains: Any) -> list[str]:
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise DeployError("domains must be a list of host names")
    clean = list(dict.fromkeys(d.strip().rstrip(".").lower() for d in domains))
    for domain in clean:
        if len(domain) > 253 or not DOMAIN_RE.match(domain):
            raise DeployError(f"{domain!r} is not a host name (like api.example.com)")
    if len(clean) > MAX_DOMAINS:
        raise DeployError(f"at most {MAX_DOMAINS} domains per app")
    return clean


def default_name(root: Path) -> str:
    """The folder's name made a valid app name (lowercase, digits, hyphens)."""
    name = re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:20].rstrip("-")
    return name or "app"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise DeployError(f"{name!r} is not a valid app name: 2-20 characters, lowercase "
                          "letters, digits and hyphens, starting with a letter")
    return name


def check_env(env: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in env.items():
        if not ENV_RE.match(str(key)):
            raise DeployError(f"{key!r} is not a valid environment variable name")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "\n" in text or "\0" in text:
            raise DeployError(f"the value of {key} holds a newline or NUL: not allowed")
        if key == "PORT":
            raise DeployError("PORT is set by gureum (use `port` in gureum.toml)")
        out[str(key)] = text
    return out


def _kind(root: Path) -> str:
    if (root / "requirements.txt").is_file() or (root / "pyproject.toml").is_file():
        return "python"
    if (root / "package.json").is_file():
        return "node"
    if (root / "index.html").is_file():
        return "static"
    if any((root / m).is_file() for m in PY_MAINS):
        return "python"
    return "other"


def _procfile_web(root: Path) -> str | None:
    procfile = root / "Procfile"
    if not procfile.is_file():
        return None
    for line in procfile.read_text(errors="replace").splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == "web" and command.strip():
            return command.strip()
    return None


def _node_start(root: Path) -> str | None:
    try:
        package = json.loads((root / "package.json").read_text())
    except (OSError, ValueError) as err:
        raise DeployError(f"package.json cannot be read: {err}") from err
    script = ((package.get("scripts") or {}).get("start") or "").strip()
    if script.startswith("node "):
        return script
    main = package.get("main")
    if isinstance(main, str) and (root / main).is_file():
        return f"node {shlex.quote(main)}"
    for candidate in NODE_MAINS:
        if (root / candidate).is_file():
            return f"node {candidate}"
    return None


def _default_start(root: Path, kind: str) -> str | None:
    if kind == "python":
        return next((f"python3 {m}" for m in PY_MAINS if (root / m).is_file()), None)
    if kind == "node":
        return _node_start(root)
    if kind == "static":
        return 'python3 -m http.server "$PORT" --bind 0.0.0.0'
    return None


def _int(table: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DeployError(f"gureum.toml: {key} must be a whole number from {low} to {high}")
    return value


def load(path: str | Path, name: str | None = None) -> AppSpec:
    root = Path(path).resolve()
    if not root.is_dir():
        raise DeployError(f"{path}: no such folder")
    table: dict[str, Any] = {}
    toml = root / "gureum.toml"
    if toml.is_file():
        try:
            table = tomllib.loads(toml.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise DeployError(f"gureum.toml: {err}") from err
        unknown = sorted(set(table) - KEYS)
        if unknown:
            raise DeployError(f"gureum.toml: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(KEYS))})")
    kind = _kind(root)
    start = table.get("start") or _procfile_web(root) or _default_start(root, kind)
    if not start:
        if kind == "other" and not toml.is_file():
            raise DeployError(f"no app found in {root}: expected gureum.toml, a Procfile, "
                              "requirements.txt / pyproject.toml, package.json or index.html")
        raise DeployError(f"no start command for the {kind} app in {root}: set `start` in "
                          "gureum.toml or a `web:` line in a Procfile")
    if not isinstance(start, str):
        raise DeployError("gureum.toml: start must be a string")
    health = table.get("health_path", "/")
    if not isinstance(health, str) or not health.startswith("/"):
        raise DeployError("gureum.toml: health_path must start with /")
    env = table.get("env", {})
    if not isinstance(env, dict):
        raise DeployError("gureum.toml: [env] must be a table of NAME = value")
    min_size = _int(table, "min", 2, 1, 20)
    max_size = _int(table, "max", max(min_size, 4), min_size, 50)
    spec = AppSpec(
        name=check_name(name or table.get("name") or default_name(root)),
        root=root, kind=kind, start=start,
        port=_int(table, "port", 8000, 1024, 65535),
        health_path=health,
        instance_type=str(table.get("instance_type", "t3.micro")),
        min_size=min_size, max_size=max_size,
        grace=_int(table, "grace", 10, 0, 3600),
        env=check_env(env),
        domains=check_domains(table.get("domains", [])))
    certificate = table.get("certificate")
    if certificate is not None and (not isinstance(certificate, str)
                                    or not certificate.startswith("arn:aws:acm:")):
        raise DeployError("gureum.toml: certificate must be an ACM certificate ARN")
    spec.certificate = certificate
    return spec
