#!/usr/bin/python3
"""Runs an instance's user data the way cloud-init does on EC2 (the parts people use).

Bind-mounted read-only from the host with the boot script; runs inside the instance as
root, in the background while sshd starts. Reads the seed the host put at
/run/gureum/seed (user-data, instance-id). Output goes to the console and to
/var/log/cloud-init-output.log.

Once per instance: write_files, users, packages, runcmd, shebang scripts.
Every boot: bootcmd and /var/lib/cloud/scripts/per-boot/*.
Services that user data starts in the background keep running (tini reaps orphans); to
bring one back after a reboot or stop/start, put a script in
/var/lib/cloud/scripts/per-boot/ or use bootcmd, as with cloud-init.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import json
import os
import pwd
import subprocess
import sys
import threading
import time

SEED = "/run/gureum/seed"
STATE = "/var/lib/cloud"
LOG = "/var/log/cloud-init-output.log"
PER_BOOT = f"{STATE}/scripts/per-boot"
_log_lock = threading.Lock()
_log = open(LOG, "ab", buffering=0)  # noqa: SIM115  (lives as long as the process)


def emit(data: bytes) -> None:
    with _log_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        _log.write(data)


def say(text: str) -> None:
    emit((text.rstrip("\n") + "\n").encode())


def run(argv: list[str] | str, shell: bool = False) -> int:
    """Run and forward output. A forwarder thread outlives the command when it leaves
    background processes holding the pipe (a server started with `&`)."""
    proc = subprocess.Popen(argv, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd="/", start_new_session=False)

    def forward() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            emit(line)

    threading.Thread(target=forward).start()
    return proc.wait()


def parts(raw: bytes) -> list[tuple[str, bytes]]:
    """(kind, body) for each part: 'script', 'cloud-config' or 'boothook'."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    head = raw.lstrip()[:200].lower()
    if head.startswith(b"content-type:") or head.startswith(b"mime-version:"):
        out: list[tuple[str, bytes]] = []
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in message.walk():
            if part.is_multipart():
                continue
            body = part.get_payload(decode=True) or b""
            ctype = part.get_content_type()
            if ctype == "text/x-shellscript":
                out.append(("script", body))
            elif ctype == "text/cloud-config":
                out.append(("cloud-config", body))
            elif ctype == "text/cloud-boothook":
                out.append(("boothook", body))
            else:
                out.extend(parts(body) if body else [])
        return out
    if raw.startswith(b"#!"):
        return [("script", raw)]
    if raw.startswith(b"#cloud-config"):
        return [("cloud-config", raw)]
    if raw.startswith(b"#cloud-boothook"):
        return [("boothook", raw)]
    return []


def merge_config(docs: list[bytes]) -> dict:
    import yaml

    merged: dict = {}
    for doc in docs:
        data = yaml.safe_load(doc) or {}
        if not isinstance(data, dict):
            raise ValueError("#cloud-config must be a mapping")
        for key, value in data.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            else:
                merged[key] = value
    return merged


def command(item: str | list[str]) -> int:
    if isinstance(item, list):
        return run([str(a) for a in item])
    return run(item, shell=True)


def write_files(entries: list[dict]) -> None:
    import base64

    for entry in entries:
        path = entry["path"]
        content = entry.get("content", "")
        encoding = str(entry.get("encoding", "")).lower()
        data = content.encode() if isinstance(content, str) else bytes(content)
        if encoding in ("b64", "base64"):
            data = base64.b64decode(data)
        elif encoding in ("gz+b64", "gzip+base64", "gz+base64"):
            data = gzip.decompress(base64.b64decode(data))
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        with open(path, "ab" if entry.get("append") else "wb") as f:
            f.write(data)
        os.chmod(path, int(str(entry.get("permissions", "0644")), 8))
        owner = str(entry.get("owner", "root:root"))
        user, _, group = owner.partition(":")
        subprocess.run(["chown", f"{user}:{group or user}", path], check=False)


def users(entries: list) -> None:
    for entry in entries:
        if entry == "default":
            continue
        if isinstance(entry, str):
            entry = {"name": entry}
        name = entry["name"]
        try:
            pwd.getpwnam(name)
        except KeyError:
            argv = ["useradd", "--create-home", "--shell", entry.get("shell", "/bin/bash")]
            groups = entry.get("groups")
            if groups:
                argv += ["--groups", groups if isinstance(groups, str) else ",".join(groups)]
            run([*argv, name])
        sudo = entry.get("sudo")
        if sudo:
            rules = [sudo] if isinstance(sudo, str) else list(sudo)
            with open(f"/etc/sudoers.d/90-cloud-init-{name}", "w") as f:
                f.write("".join(f"{name} {rule}\n" for rule in rules))
            os.chmod(f"/etc/sudoers.d/90-cloud-init-{name}", 0o440)
        keys = entry.get("ssh_authorized_keys") or entry.get("ssh-authorized-keys") or []
        if keys:
            home = pwd.getpwnam(name).pw_dir
            os.makedirs(f"{home}/.ssh", mode=0o700, exist_ok=True)
            with open(f"{home}/.ssh/authorized_keys", "a") as f:
                f.write("".join(k.strip() + "\n" for k in keys))
            subprocess.run(["chown", "-R", f"{name}:", f"{home}/.ssh"], check=False)
            os.chmod(f"{home}/.ssh/authorized_keys", 0o600)


def has_mirror_route() -> bool:
    """The host says whether this instance has outbound access (an internet gateway path)."""
    try:
        with open(f"{SEED}/outbound") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def per_boot(config: dict) -> int:
    status = 0
    for item in config.get("bootcmd") or []:
        status = command(item) or status
    if os.path.isdir(PER_BOOT):
        for name in sorted(os.listdir(PER_BOOT)):
            path = os.path.join(PER_BOOT, name)
            if os.access(path, os.X_OK):
                status = run([path]) or status
    return status


def first_boot(found: list[tuple[str, bytes]], config: dict) -> int:
    status = 0
    if config.get("write_files"):
        write_files(config["write_files"])
    if config.get("users"):
        users(config["users"])
    if config.get("packages"):
        pkgs = [p if isinstance(p, str) else "=".join(p) for p in config["packages"]]
        if has_mirror_route():
            status = run(["apt-get", "update", "-q"]) or status
            status = run(["apt-get", "install", "-y", "-q", *pkgs]) or status
        else:
            say(f"packages: not installing {' '.join(pkgs)}: this instance cannot reach a "
                "package mirror (no outbound access)")
    for i, (kind, body) in enumerate(found):
        if kind != "script":
            continue
        path = f"{STATE}/instance/scripts/part-{i + 1:03d}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(body)
        os.chmod(path, 0o700)
        status = run([path]) or status
    runcmd = config.get("runcmd") or []
    if runcmd:
        for item in runcmd:
            status = command(item) or status
    return status


def main() -> int:
    started = time.time()
    try:
        with open(f"{SEED}/user-data", "rb") as f:
            raw = f.read()
        with open(f"{SEED}/instance-id") as f:
            instance_id = f.read().strip()
    except OSError:
        return 0
    os.makedirs(f"{STATE}/data", exist_ok=True)
    marker = f"{STATE}/instances/{instance_id}/boot-finished"
    errors: list[str] = []
    status = 0
    try:
        found = parts(raw)
        config = merge_config([b for k, b in found if k == "cloud-config"])
        for kind, body in found:
            if kind == "boothook":
                status = run(["/bin/sh", "-c", body.decode()]) or status
        status = per_boot(config) or status
        if not os.path.exists(marker):
            status = first_boot(found, config) or status
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            with open(marker, "w") as f:
                f.write(f"{time.time()}\n")
        message = config.get("final_message")
        if message:
            with open("/proc/uptime") as f:
                uptime = f.read().split()[0]
            for key, value in (("$UPTIME", uptime), ("$TIMESTAMP", time.ctime()),
                               ("$INSTANCE_ID", instance_id), ("$DATASOURCE", "Ec2")):
                message = str(message).replace(key, value).replace(key.lower(), value)
            say(str(message))
    except Exception as err:  # a broken user-data must be reported, never hang the boot
        errors.append(f"{type(err).__name__}: {err}")
        say(f"gureum: user-data failed: {errors[-1]}")
        status = status or 1
    with open(f"{STATE}/data/result.json", "w") as f:
        json.dump({"v1": {"datasource": "DataSourceEc2", "errors": errors, "status": status,
                          "seconds": round(time.time() - started, 3)}}, f)
    say(f"gureum: user-data finished with status {status} "
        f"after {time.time() - started:.2f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
