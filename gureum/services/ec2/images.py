"""Who sees and may launch an image: the built-in ones, an account's own, public ones and
those shared with it (launchPermission)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.services.ec2 import exceptions as exc
from gureum.store import models

NAME = re.compile(r"^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$")
SHOWN = ("available", "pending", "failed")


def visible(image: models.Image, account_id: str) -> bool:
    if image.state not in SHOWN:
        return False
    return (image.account_id is None or image.account_id == account_id or image.public
            or account_id in (image.shared_with or []))


def launchable(image: models.Image | None, account_id: str, image_id: str) -> models.Image:
    if image is None or not visible(image, account_id):
        raise exc.InvalidAMIIDNotFound(f"The image id '[{image_id}]' does not exist")
    if image.state != "available":
        raise exc.InvalidAMIIDNotFound(f"The image id '[{image_id}]' is not available "
                                       f"(it is {image.state})")
    return image


def snapshots_of(image: models.Image) -> list[str]:
    """Every snapshot an image starts its instances from."""
    return [i for i in [image.root_snapshot_id, *(m.get("SnapshotId") for m in
                                                   image.data_mappings or [])] if i]


def user_of_snapshot(s: Session, snapshot_id: str) -> str | None:
    """A registered (pending or available) image that starts instances from the snapshot."""
    return next((image.image_id for image in s.scalars(select(models.Image).where(
        models.Image.state.in_(("pending", "available"))))
        if snapshot_id in snapshots_of(image)), None)


def check_name(name: str | None) -> str:
    if not name:
        raise exc.MissingParameter("The request must contain the parameter name")
    if not NAME.match(name):
        raise exc.InvalidAMINameMalformed(
            "AMI names must be between 3 and 128 characters long, and may contain letters, "
            "numbers, '(', ')', '.', '-', '/', '_', ' ', '[', ']', ''' and '@'")
    return name
