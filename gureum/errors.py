"""The one error tree of gureum.

`GureumError` is the root. API errors (one subclass per AWS error code) live in each
service's `exceptions.py` and derive from `ApiError`; host failures derive from
`HostError` and carry the failed command's stderr.
"""

from __future__ import annotations

from collections.abc import Sequence


class GureumError(Exception):
    """Base of every error gureum raises on purpose."""


class ApiError(GureumError):
    """An error answered to an API client in its protocol's error envelope."""

    code: str = "InternalError"
    status: int = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class HostError(GureumError):
    """A host-side operation (runc, ip, nft, mount, ...) failed."""


class HostCommandFailed(HostError):
    def __init__(self, cmd: Sequence[str], returncode: int, stderr: str) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.cmd)} exited {returncode}: {self.stderr}")


class NetnsMissing(HostError):
    """An instance's network namespace is not on the host (the instance is gone)."""


class MountFailed(HostError):
    """A mount made by a system call (not mount(8)) failed; the message names it."""


class LoopMountFailed(MountFailed):
    """Setting up a loop device for a disk image, or mounting its filesystem, failed."""


class AgentUnavailable(HostError):
    """The agent cannot be reached (down, restarting): says nothing about the instance,
    so controllers retry later without counting a failed attempt."""


class AgentAuthFailed(HostError):
    """The agent refused the caller's token."""


class AgentProtocolError(HostError):
    """A call the contract does not define, or arguments it does not take."""


class VolumeBusy(HostError):
    """A volume cannot be unmounted: a process inside its instance still uses it (open
    files, a working directory). A plain detach waits; a forced one detaches lazily."""


class VolumeHeld(HostError):
    """A volume's file is still behind a loop device (a forced detach whose last user has
    not let go yet): it cannot be attached anywhere until it is released."""


class ConfigError(GureumError):
    """The operator's configuration cannot be served as asked (e.g. the API in clear
    text beyond loopback, a certificate file that does not load)."""


class OperatorError(GureumError):
    """An operator command refused or failed (`gureum account delete` of the cloud
    owner's account, an unknown account): the message says why."""
