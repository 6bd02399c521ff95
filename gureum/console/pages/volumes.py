"""EBS volumes and snapshots: list, create, snapshot, delete."""

from __future__ import annotations

from typing import Any

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.pages.instances import instances
from gureum.console.pages.tags import EC2, Taggable, register
from gureum.console.routing import route
from gureum.errors import ApiError

FIELDS = {"~size": "size", "~GiB": "size", "VolumeLimitExceeded": "size",
          "~zone": "size"}


register("volume", Taggable("volume", "Volumes", EC2, lambda _: "/volumes"))
register("snapshot", Taggable("snapshot", "Volumes", EC2, lambda _: "/volumes"))


def _list(page: Page, status: int = 200, **context: Any) -> Response:
    context.setdefault("size", "8")
    volumes = page.call("DescribeVolumes")["Volumes"]
    snapshots = page.call("DescribeSnapshots", {"OwnerIds": ["self"]})["Snapshots"]
    live = [i for i in instances(page) if i["State"]["Name"] in ("running", "stopped")]
    return page.render("volumes.html", status=status, volumes=volumes, snapshots=snapshots,
                       instances=live, **context)


@route("GET", "/volumes")
def list_volumes(page: Page) -> Response:
    return _list(page)


@route("POST", "/volumes")
def create(page: Page) -> Response:
    size = page.request.field("size")
    zone = page.call("DescribeAvailabilityZones")["AvailabilityZones"][0]["ZoneName"]
    try:
        out = page.call("CreateVolume", {"Size": size, "AvailabilityZone": zone,
                                         "VolumeType": "gp3"})
    except ApiError as err:
        return _list(page, err.status, size=size, errors=error_on(err, FIELDS))
    return page.done("/volumes", f"Creating {out['VolumeId']} ({size} GiB)")


def _change(page: Page, action: str, params: dict[str, str], message: str) -> Response:
    return page.change(action, params, "/volumes", lambda out: message.format(**out))


@route("POST", "/volumes/{volume_id}/snapshot")
def snapshot(page: Page, volume_id: str) -> Response:
    return _change(page, "CreateSnapshot", {"VolumeId": volume_id},
                   "Snapshot {SnapshotId} of " + volume_id + " started")


@route("POST", "/volumes/{volume_id}/attach")
def attach(page: Page, volume_id: str) -> Response:
    instance_id, device = page.request.field("instance_id"), page.request.field("device")
    return _change(page, "AttachVolume", {"VolumeId": volume_id, "InstanceId": instance_id,
                                          "Device": device},
                   f"Attaching {volume_id} to {instance_id} as {device}")


@route("POST", "/volumes/{volume_id}/detach")
def detach(page: Page, volume_id: str) -> Response:
    if (ask := page.unconfirmed(kind="volume", name=volume_id, verb="detach",
                                action=f"/volumes/{volume_id}/detach", back="/volumes",
                                note="It is unmounted inside the instance: close its files "
                                     "first.")) is not None:
        return ask
    return _change(page, "DetachVolume", {"VolumeId": volume_id}, f"Detaching {volume_id}")


@route("POST", "/volumes/{volume_id}/delete")
def delete_volume(page: Page, volume_id: str) -> Response:
    if (ask := page.unconfirmed(kind="volume", name=volume_id,
                                action=f"/volumes/{volume_id}/delete", back="/volumes",
                                note="Its data is gone for good (snapshots of it stay)."
                                )) is not None:
        return ask
    return _change(page, "DeleteVolume", {"VolumeId": volume_id}, f"Deleting {volume_id}")


@route("POST", "/snapshots/{snapshot_id}/delete")
def delete_snapshot(page: Page, snapshot_id: str) -> Response:
    if (ask := page.unconfirmed(kind="snapshot", name=snapshot_id,
                                action=f"/snapshots/{snapshot_id}/delete",
                                back="/volumes")) is not None:
        return ask
    return _change(page, "DeleteSnapshot", {"SnapshotId": snapshot_id},
                   f"Deleted {snapshot_id}")
