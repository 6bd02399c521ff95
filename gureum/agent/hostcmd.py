"""Running host commands: every failure becomes HostCommandFailed with the command's stderr."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from gureum.errors import HostCommandFailed


def run(cmd: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(
        list(cmd), input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise HostCommandFailed(cmd, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def succeeds(cmd: Sequence[str], *, input: str | None = None) -> bool:
    return subprocess.run(list(cmd), input=input, capture_output=True,
                          text=input is not None).returncode == 0
