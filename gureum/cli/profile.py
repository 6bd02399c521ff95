"""Writes the `gureum` AWS profile so `aws --profile gureum` and boto3 need no flags
(over HTTPS, its `ca_bundle` names the CA they verify the endpoint with)."""

from __future__ import annotations

import configparser
import os
from pathlib import Path


def _paths() -> tuple[Path, Path]:
    home = Path.home() / ".aws"
    config = Path(os.environ.get("AWS_CONFIG_FILE", home / "config"))
    creds = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", home / "credentials"))
    return config, creds


def write_profile(name: str, access_key: str, secret_key: str, region: str, endpoint: str,
                  ca_bundle: Path | None = None) -> tuple[Path, Path]:
    config_path, creds_path = _paths()
    settings = {"region": region, "endpoint_url": endpoint, "output": "json"}
    if ca_bundle is not None:
        settings["ca_bundle"] = str(ca_bundle)
    for path, section, values in (
        (creds_path, name, {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}),
        (config_path, f"profile {name}" if name != "default" else "default", settings),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        parser = configparser.ConfigParser()
        parser.read(path)
        parser[section] = values
        with open(path, "w") as f:
            parser.write(f)
        path.chmod(0o600)
    return config_path, creds_path
