"""The fingerprints the host writes with an instance's keys are what ssh-keygen prints
(boot/boot shows them on the console instead of running ssh-keygen at every boot)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gureum.agent import firstboot


def test_fingerprint_lines_match_ssh_keygen(tmp_path: Path) -> None:
    for kind, (_, pub) in firstboot.host_keys("ip-10-0-0-4").items():
        path = tmp_path / f"ssh_host_{kind}_key.pub"
        path.write_bytes(pub)
        expected = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True,
                                  text=True, check=True).stdout.strip()
        assert firstboot.fingerprint_line(pub) == expected
