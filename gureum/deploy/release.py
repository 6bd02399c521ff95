"""A release image: the app and its dependencies layered over the cloud's standard
(systemd) image, registered as an ordinary image of the account.

The base root is hard-linked (`cp -al`), not copied: images are never written to
(instances see them read-only, as an overlay's lower layer), so a release costs only its
directories and the app's own files. Nothing under the new root may be opened for writing
in place (that would write through the link into the base image): every file this module
puts there is new, or replaces a link by unlinking it first (`_put`).

Inside the release:
  /srv/app                      the app (owned by ec2-user, who runs it)
  /srv/app/.python              Python dependencies, `pip install --target` on the host
  /usr/local/bin/node           the host's node, when the app is a Node app
  /etc/gureum/app.env           its environment, 0600 root (systemd reads it as root)
  /etc/gureum/release.json      app, release, start command, port (no secrets)
  gureum-app.service            Restart=always, enabled: the app starts at every boot
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gureum.agent import custom_images
from gureum.agent import image as image_mod
from gureum.config import Config
from gureum.deploy import DeployError
from gureum.deploy.spec import AppSpec

APP_DIR = "srv/app"
ENV_FILE = "etc/gureum/app.env"
INFO_FILE = "etc/gureum/release.json"
UNIT = "gureum-app.service"
APP_UID = 1000  # ec2-user in the standard image
SKIP = {".git", "node_modules", "__pycache__", ".venv", "venv", ".python", ".mypy_cache",
        ".pytest_cache", ".ruff_cache"}
HOST_PYTHON = "/usr/bin/python3"  # Debian 12's 3.11: the image's python3, same ABI


@dataclass
class Built:
    image_id: str
    name: str
    seconds: dict[str, float]


def base_image(cfg: Config) -> image_mod.Image:
    img = image_mod.systemd_image(cfg.image_cache)
    if not image_mod.is_built(img):
        raise DeployError(f"the standard image {img.name} is not built yet: run `gureum up` "
                          "(or `gureum image build`) first")
    return img


def env_file_text(env: dict[str, str]) -> str:
    """systemd's EnvironmentFile syntax: double quotes, backslash escapes."""
    lines = []
    for key, value in sorted(env.items()):
        quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        lines.append(f'{key}="{quoted}"\n')
    return "".join(lines)


def parse_env_file(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
            out, i = [], 0
            while i < len(value):
                if value[i] == "\\" and i + 1 < len(value):
                    i += 1
                out.append(value[i])
                i += 1
            value = "".join(out)
        env[key] = value
    return env


def unit_text(app: str, release: str, start: str, port: int) -> str:
    return f"""[Unit]
Description=gureum app {app} ({release})
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
User=ec2-user
WorkingDirectory=/srv/app
EnvironmentFile=/etc/gureum/app.env
Environment=PORT={port} PYTHONPATH=/srv/app/.python PYTHONUNBUFFERED=1 NODE_ENV=production HOME=/home/ec2-user
ExecStart=/bin/sh -c {_systemd_quote('exec ' + start)}
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def _systemd_quote(text: str) -> str:
    """One ExecStart word, left for /bin/sh: systemd must not expand `$VAR` or `%x` itself."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("%", "%%").replace("$", "$$") + '"'


def _put(path: Path, text: str, mode: int = 0o644) -> None:
    """A new file at `path`, never a write through a hard link into the base image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _run(cmd: list[str], cwd: Path | None, what: str, timeout: float = 600) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as err:
        raise DeployError(f"{what}: {cmd[0]} is not installed on this host") from err
    except subprocess.TimeoutExpired as err:
        raise DeployError(f"{what}: timed out after {timeout:.0f} s") from err
    if proc.returncode != 0:
        raise DeployError(f"{what} failed (exit {proc.returncode})",
                          (proc.stdout + proc.stderr)[-4000:])


def _link_tree(base: Path, rootfs: Path) -> None:
    """The base root, hard-linked (same filesystem), else copied."""
    try:
        subprocess.run(["cp", "-al", f"{base}/.", str(rootfs)], check=True,
                       capture_output=True, text=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.mkdir()
        subprocess.run(["cp", "-a", f"{base}/.", str(rootfs)], check=True)


def _install_python(spec: AppSpec, app: Path) -> None:
    target = app / ".python"
    args = [HOST_PYTHON, "-m", "pip", "install", "--target", str(target), "--no-cache-dir",
            "--disable-pip-version-check", "--no-warn-script-location", "--quiet",
            "--root-user-action=ignore"]
    if (spec.root / "requirements.txt").is_file():
        reqs = (spec.root / "requirements.txt").read_text()
        if any(line.strip() and not line.lstrip().startswith("#") for line in reqs.splitlines()):
            _run([*args, "-r", str(app / "requirements.txt")], app, "pip install -r "
                 "requirements.txt")
    elif (spec.root / "pyproject.toml").is_file():
        _run([*args, str(app)], app, "pip install of the project (pyproject.toml)")


def _install_node(spec: AppSpec, app: Path, rootfs: Path) -> None:
    if not (rootfs / "usr/bin/node").exists() and not (rootfs / "usr/local/bin/node").exists():
        host_node = shutil.which("node")
        if host_node is None:
            raise DeployError("a Node app needs node: the standard image has none, and this "
                              "host has none to copy into the release")
        node = rootfs / "usr/local/bin/node"
        node.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(os.path.realpath(host_node), node)  # a file never written to, shared
        except OSError:
            shutil.copy2(host_node, node)
    package = json.loads((spec.root / "package.json").read_text())
    if package.get("dependencies"):
        verb = "ci" if (spec.root / "package-lock.json").is_file() else "install"
        _run(["npm", verb, "--omit=dev", "--no-audit", "--no-fund"], app,
             f"npm {verb} --omit=dev")


def _chown_tree(path: Path, uid: int) -> None:
    os.lchown(path, uid, uid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def build_root(cfg: Config, spec: AppSpec | None, release: str, env: dict[str, str],
               staging: Path, parent_root: Path | None = None) -> dict[str, float]:
    """The release root in `staging/rootfs`. With `spec`, the app comes from its folder;
    without, from `parent_root` (an earlier release: a new environment, same code)."""
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    base = base_image(cfg)
    rootfs = staging / "rootfs"
    rootfs.mkdir(parents=True)
    _link_tree(parent_root or base.rootfs, rootfs)
    seconds["base"] = time.monotonic() - t0
    app = rootfs / APP_DIR
    if spec is not None:
        t1 = time.monotonic()
        if app.exists():
            shutil.rmtree(app)
        shutil.copytree(spec.root, app, symlinks=True,
                        ignore=lambda _d, names: [n for n in names if n in SKIP])
        if spec.kind == "python":
            _install_python(spec, app)
        elif spec.kind == "node":
            _install_node(spec, app, rootfs)
        _chown_tree(app, APP_UID)
        seconds["deps"] = time.monotonic() - t1
        info = {"app": spec.name, "release": release, "start": spec.start, "port": spec.port,
                "kind": spec.kind}
    else:
        info = json.loads((rootfs / INFO_FILE).read_text())
        info["release"] = release
    (rootfs / "etc/gureum").mkdir(mode=0o700, exist_ok=True)
    os.chmod(rootfs / "etc/gureum", 0o700)
    _put(rootfs / ENV_FILE, env_file_text(env), 0o600)
    _put(rootfs / INFO_FILE, json.dumps(info, indent=2) + "\n", 0o600)
    unit = rootfs / "etc/systemd/system" / UNIT
    _put(unit, unit_text(info["app"], release, info["start"], int(info["port"])))
    wants = rootfs / "etc/systemd/system/multi-user.target.wants" / UNIT
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to(f"/etc/systemd/system/{UNIT}")
    rootfs.chmod(0o755)
    seconds["total"] = time.monotonic() - t0
    return seconds


def app_size(rootfs: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(rootfs / APP_DIR):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def build(cfg: Config, account_id: str, spec: AppSpec | None, app_name: str, release: str,
          env: dict[str, str], parent_image: str | None = None) -> Built:
    """Build the release root and register it as an image of `account_id`."""
    from gureum.cloud import Cloud
    from gureum.services.ec2 import ids
    from gureum.store import models

    image_id = ids.new("ami")
    target = custom_images.image_dir(cfg.data_dir, image_id)
    staging = target.with_name(image_id + ".building")
    parent_root = None
    if parent_image is not None:
        parent_root = custom_images.image_dir(cfg.data_dir, parent_image) / "rootfs"
        if not (parent_root / INFO_FILE).exists():
            raise DeployError(f"release image {parent_image} is not on this host")
    try:
        seconds = build_root(cfg, spec, release, env, staging, parent_root)
        (staging / "complete").write_text(image_id + "\n")
        staging.rename(target)
    except BaseException:
        custom_images.delete(cfg.data_dir, image_id)
        raise
    t0 = time.monotonic()
    name = f"gureum-app-{app_name}-{release}"
    size_gib = 8 + math.ceil(app_size(target / "rootfs") * 2 / 1024**3)
    cloud = Cloud(cfg, with_agent=False)
    with cloud.store.write() as s:
        s.add(models.Image(
            image_id=image_id, name=name, owner_id=account_id, owner_alias=None,
            description=f"gureum deploy: app {app_name}, release {release}",
            rootfs=str(target / "rootfs"), state="available", public=False,
            account_id=account_id, shared_with=[], init_system="systemd",
            root_size_gib=size_gib))
    seconds["register"] = time.monotonic() - t0
    return Built(image_id, name, seconds)


def read_env(cfg: Config, image_id: str) -> dict[str, str]:
    """A release's environment, read on the host (root only)."""
    path = custom_images.image_dir(cfg.data_dir, image_id) / "rootfs" / ENV_FILE
    try:
        return parse_env_file(path.read_text())
    except OSError:
        return {}


def read_info(cfg: Config, image_id: str) -> dict[str, object]:
    path = custom_images.image_dir(cfg.data_dir, image_id) / "rootfs" / INFO_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
