"""Server changes through HAProxy's runtime API (its admin socket), without a reload:
registering adds a server (it starts in maintenance: health checks are enabled, then the
server, marked down in the same command so that no request reaches it before it passes
its checks: HAProxy 2.6 would otherwise take it as up at once), draining sets weight 0 (in-flight requests finish, new ones go elsewhere),
deregistering puts it in maintenance, ends its sessions and deletes it."""

from __future__ import annotations

import logging

from gureum.agent.contract import LoadBalancerSpec
from gureum.agent.lb import haproxy
from gureum.agent.lb.process import LoadBalancerFiles, admin_command
from gureum.errors import HostError

log = logging.getLogger("gureum.lb")


def _ok(files: LoadBalancerFiles, command: str) -> str:
    out = admin_command(files, command).strip()
    lowered = out.lower()
    if any(word in lowered for word in ("unknown", "error", "failed", "cannot", "not found",
                                        "no such", "invalid", "refused")):
        raise HostError(f"haproxy `{command}` for {files.dir.name}: {out[:300]}")
    return out


def servers_by_backend(spec: LoadBalancerSpec) -> dict[str, dict[str, str]]:
    return {b.name: {s.name: haproxy.server_args(b, s) for s in b.servers}
            for b in spec.backends}


def apply(files: LoadBalancerFiles, old: LoadBalancerSpec, new: LoadBalancerSpec) -> None:
    """Turn the running servers of `old` into those of `new` (same backends otherwise)."""
    before, after = servers_by_backend(old), servers_by_backend(new)
    for backend_name, servers in after.items():
        current = before.get(backend_name, {})
        for name, args in servers.items():
            if current.get(name) == args:
                continue
            if name in current:
                old_args = current[name]
                if old_args.replace(" weight 0", "") == args.replace(" weight 0", ""):
                    weight = "0" if args.endswith(" weight 0") else "1"
                    _ok(files, f"set server {backend_name}/{name} weight {weight}")
                    continue
                _remove(files, backend_name, name)
            _ok(files, f"add server {backend_name}/{name} {args}")
            _ok(files, f"enable health {backend_name}/{name}")
            _ok(files, f"enable server {backend_name}/{name}; "
                       f"set server {backend_name}/{name} health down")
        for name in set(current) - set(servers):
            _remove(files, backend_name, name)


def _remove(files: LoadBalancerFiles, backend: str, server: str) -> None:
    _ok(files, f"set server {backend}/{server} state maint")
    admin_command(files, f"shutdown sessions server {backend}/{server}")
    _ok(files, f"del server {backend}/{server}")
