"""Volumes: CreateVolume, DeleteVolume, DescribeVolumes, DescribeVolumeStatus,
DescribeVolumeAttribute, ModifyVolume, AttachVolume, DetachVolume.

Create and Modify ask the zone's SC on the request (its refusal — VolumeLimitExceeded, a
snapshot it cannot find — is the user's answer, and nothing is recorded); attach, detach and
delete record the wish, answer, and leave the SC and CC calls to clc/volume_work.py; a new
volume's state comes from clc/volume_settler.py."""

from __future__ import annotations

from typing import Any

from clc import snapshots, tagging, volumes
from clc.api.query import apply_filters, paged
from clc.api.registry import Context, action
from clc.instances import owned as owned_instances
from clc.models.volumes import Volume
from clc.storage_client import StorageClient
from clc.volume_settler import VolumeSettler
from clc.volume_view import attachment_dict, filters, status_dict, volume_dict
from clc.volume_work import VolumeWork
from services.clock import utcnow
from services.errors import EC2Error
from services.messages.storage import CreateVolume as ScCreateVolume


def _storage(ctx: Context) -> StorageClient:
    if ctx.storage is None:
        raise EC2Error("Unavailable", "This cloud has no storage controller.", 503)
    return ctx.storage


def _work(ctx: Context) -> VolumeWork:
    if ctx.volumes is None:
        raise EC2Error("Unavailable", "This cloud has no storage controller.", 503)
    return ctx.volumes


def _settler(ctx: Context) -> VolumeSettler:
    if ctx.settler is None:
        raise EC2Error("Unavailable", "This cloud has no storage controller.", 503)
    return ctx.settler


def _tags(ctx: Context, rows: list[Volume]) -> dict[str, dict[str, str]]:
    return tagging.tags_by_resource(ctx.db, ctx.account_id, "volume", [r.id for r in rows])


def _same_request(volume: Volume, zone: str, size: int | None, snapshot_id: str | None,
                  kind: str) -> bool:
    return (volume.zone, volume.snapshot_id, volume.volume_type) == (zone, snapshot_id, kind) and (
        size is None or size == volume.size_gib)


@action("CreateVolume")
def create_volume(ctx: Context, AvailabilityZone: str, Size: int | None = None,
                  SnapshotId: str | None = None, VolumeType: str | None = None,
                  TagSpecifications: list[dict[str, Any]] | None = None,
                  ClientToken: str | None = None, Encrypted: bool = False) -> dict:
    if Encrypted:
        raise EC2Error("InvalidParameterValue", "eucasim's volumes are not encrypted; "
                       "leave Encrypted unset or false.")
    kind = volumes.volume_type(VolumeType)
    if AvailabilityZone not in ctx.config.zones:
        raise EC2Error("InvalidParameterValue", f"Invalid availability zone: [{AvailabilityZone}]")
    if ClientToken:
        earlier = volumes.by_client_token(ctx.db, ctx.account_id, ClientToken)
        if earlier is not None:
            if not _same_request(earlier, AvailabilityZone, Size, SnapshotId, kind):
                raise EC2Error("IdempotentParameterMismatch",
                               f"The client token '{ClientToken}' was used for another request.")
            return volume_dict(earlier, _tags(ctx, [earlier]).get(earlier.id, {}))
    if Size is None and SnapshotId is None:
        raise EC2Error("MissingParameter", "The request must contain the parameter size or snapshotId")
    snapshot = snapshots.restorable(ctx.db, ctx.account_id, SnapshotId) if SnapshotId else None
    size = Size if Size is not None else snapshot.volume_size_gib  # type: ignore[union-attr]
    volumes.check_size(size, kind)
    if snapshot is not None and size < snapshot.volume_size_gib:
        raise EC2Error("InvalidParameterValue",
                       f"Volume of size {size} is smaller than snapshot '{snapshot.id}', "
                       f"expect size >= {snapshot.volume_size_gib}")
    # Tags are checked before the SC makes anything.
    for spec in TagSpecifications or []:
        if spec.get("ResourceType") != "volume":
            raise EC2Error("InvalidParameterValue", f"'{spec.get('ResourceType')}' is not a valid "
                           "taggable resource type for this operation.")
        tagging.validated_tags(spec.get("Tags"))
    volume_id = ctx.new_id("vol")
    # Nothing is written before this call: a refusal (VolumeLimitExceeded) changes nothing.
    _settler(ctx).unrecorded(ctx.db, volume_id)
    info = _storage(ctx).create_volume(AvailabilityZone, ScCreateVolume(
        volume_id=volume_id, size_gib=size,
        snapshot_id=snapshot.data_id if snapshot is not None else None))
    row = volumes.record_new(ctx.db, Volume(
        id=volume_id, account_id=ctx.account_id, zone=AvailabilityZone, size_gib=info.size_gib,
        volume_type=kind, snapshot_id=SnapshotId, client_token=ClientToken or None,
        state="creating", created_at=info.created_at, updated_at=utcnow()))
    tags = tagging.apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications, "volume",
                                            volume_id)
    ctx.trace("decided", f"{volume_id}: {size} GiB {kind} in {AvailabilityZone}",
              snapshot=SnapshotId, sc_state=info.state)
    answer = volume_dict(row, {t["Key"]: t["Value"] for t in tags})
    ctx.db.commit()
    _settler(ctx).settle(AvailabilityZone, volume_id)
    return answer


@action("DeleteVolume")
def delete_volume(ctx: Context, VolumeId: str) -> None:
    volume = volumes.one(ctx.db, ctx.account_id, VolumeId)
    volumes.check_deletable(volume)
    volumes.transition(volume, "deleting")
    tagging.delete_all_tags(ctx.db, ctx.account_id, volume.id)
    ctx.db.commit()
    _work(ctx).delete(volume.zone, volume.id, ctx.request_id)


VOLUMES_PAGE = 500


@action("DescribeVolumes")
def describe_volumes(ctx: Context, VolumeIds: list[str] | None = None,
                     Filters: list[dict[str, Any]] | None = None,
                     MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    if VolumeIds and MaxResults is not None:
        raise EC2Error("InvalidParameterCombination",
                       "The parameter volumeSet cannot be used with the parameter maxResults")
    if MaxResults is not None and MaxResults > VOLUMES_PAGE:
        # EC2 answers at most 500 volumes a page and takes a larger MaxResults as 500; the
        # AWS CLI asks for 1000 on every plain `describe-volumes`.
        MaxResults = VOLUMES_PAGE
    rows = volumes.owned(ctx.db, ctx.account_id, VolumeIds or None)
    tags = _tags(ctx, rows)
    rows = apply_filters(rows, Filters, filters(), tags_of=lambda v: tags.get(v.id, {}))
    return paged("Volumes", rows, MaxResults, NextToken,
                 lambda page: [volume_dict(v, tags.get(v.id, {})) for v in page], maximum=500)


@action("DescribeVolumeStatus")
def describe_volume_status(ctx: Context, VolumeIds: list[str] | None = None,
                           Filters: list[dict[str, Any]] | None = None,
                           MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    rows = volumes.owned(ctx.db, ctx.account_id, VolumeIds or None)
    statuses = apply_filters([status_dict(r) for r in rows], Filters, {
        "availability-zone": lambda s: s["AvailabilityZone"],
        "volume-status.status": lambda s: s["VolumeStatus"]["Status"],
        "volume-status.details-name": lambda s: [d["Name"] for d in s["VolumeStatus"]["Details"]],
        "volume-status.details-status": lambda s: [d["Status"] for d in s["VolumeStatus"]["Details"]],
        "event.event-type": lambda s: [e["EventType"] for e in s["Events"]],
        "event.description": lambda s: [e["Description"] for e in s["Events"]],
        "event.event-id": lambda s: [e["EventId"] for e in s["Events"]],
        "event.not-before": lambda s: None, "event.not-after": lambda s: None,
        "action.code": lambda s: None, "action.description": lambda s: None,
        "action.event-id": lambda s: None, "action.event-type": lambda s: None})
    return paged("VolumeStatuses", statuses, MaxResults, NextToken, lambda page: page)


@action("DescribeVolumeAttribute")
def describe_volume_attribute(ctx: Context, VolumeId: str, Attribute: str) -> dict:
    volume = volumes.one(ctx.db, ctx.account_id, VolumeId)
    if Attribute == "autoEnableIO":
        return {"VolumeId": volume.id, "AutoEnableIO": {"Value": False}}
    if Attribute == "productCodes":
        return {"VolumeId": volume.id, "ProductCodes": []}
    raise EC2Error("InvalidParameterValue",
                   f"Value ({Attribute}) for parameter attribute is invalid. Unknown attribute.")


@action("ModifyVolume")
def modify_volume(ctx: Context, VolumeId: str, Size: int | None = None,
                  VolumeType: str | None = None) -> dict:
    volume = volumes.one(ctx.db, ctx.account_id, VolumeId)
    if volume.state not in ("available", "in-use"):
        raise EC2Error("IncorrectState", f"The volume '{volume.id}' is in the '{volume.state}' state.")
    kind = volumes.volume_type(VolumeType or volume.volume_type)
    size = Size if Size is not None else volume.size_gib
    if size < volume.size_gib:
        raise EC2Error("InvalidParameterValue",
                       f"New size cannot be smaller than existing size ({volume.size_gib}GiB).")
    volumes.check_size(size, kind)
    if Size is None and VolumeType is None:
        raise EC2Error("InvalidParameterCombination",
                       "At least one of size, volumeType, iops or throughput must be given.")
    start = utcnow()
    before = (volume.size_gib, volume.volume_type)
    if size > volume.size_gib:
        info = _storage(ctx).grow_volume(volume.zone, volume.id, size)
        volume.size_gib = info.size_gib
    volume.volume_type = kind
    volume.updated_at = utcnow()
    return {"VolumeModification": {
        "VolumeId": volume.id, "ModificationState": "completed", "Progress": 100,
        "TargetSize": volume.size_gib, "TargetVolumeType": kind, "OriginalSize": before[0],
        "OriginalVolumeType": before[1], "StartTime": start, "EndTime": utcnow()}}


@action("AttachVolume")
def attach_volume(ctx: Context, VolumeId: str, InstanceId: str, Device: str) -> dict:
    work = _work(ctx)
    with volumes.ATTACHMENTS:
        volume = volumes.one(ctx.db, ctx.account_id, VolumeId)
        instance = owned_instances(ctx.db, ctx.account_id, [InstanceId])[0]
        if instance.state not in ("running", "stopped"):
            raise EC2Error("IncorrectState", f"Instance '{instance.id}' is not 'running'.")
        if volume.zone != instance.zone:
            raise EC2Error("InvalidVolume.ZoneMismatch",
                           f"The volume '{volume.id}' is not in the same availability zone as "
                           f"instance '{instance.id}'")
        volumes.check_attachable(volume)
        device = volumes.check_device(Device, volumes.devices_of(ctx.db, instance.id))
        volumes.move_attachment(volume, "attaching", instance_id=instance.id, device=device)
        ctx.db.flush()
        ctx.trace("decided", f"attach {volume.id} to {instance.id} as {device}", node=instance.node)
        # The job reads the row this request wrote, so it is committed first (as RunInstances
        # does); inside the lock, so the next attach of this volume reads it.
        ctx.db.commit()
    work.attach(volume.zone, volume.id, ctx.request_id)
    return attachment_dict(volume)


@action("DetachVolume")
def detach_volume(ctx: Context, VolumeId: str, InstanceId: str | None = None,
                  Device: str | None = None, Force: bool = False) -> dict:
    work = _work(ctx)
    with volumes.ATTACHMENTS:
        volume = volumes.one(ctx.db, ctx.account_id, VolumeId)
        if volume.instance_id is None:
            raise EC2Error("IncorrectState", f"Volume '{volume.id}' is in the '{volume.state}' state.")
        if (InstanceId is not None and InstanceId != volume.instance_id) or (
                Device is not None and volumes.short_device(Device) != volumes.short_device(volume.device or "")):
            raise EC2Error("InvalidAttachment.NotFound",
                           f"Attachment point {Device or ''} of {InstanceId or volume.instance_id} "
                           f"does not hold volume '{volume.id}'")
        if volume.attach_state != "detaching":
            volumes.move_attachment(volume, "detaching")
        volume.force_detach = bool(Force)
        answer = attachment_dict(volume)
        ctx.db.commit()
    work.detach(volume.zone, volume.id, ctx.request_id)
    return answer
