"""Snapshots: CreateSnapshot, CreateSnapshots, DeleteSnapshot, DescribeSnapshots,
Describe/Modify/ResetSnapshotAttribute (createVolumePermission), CopySnapshot.

CreateSnapshot waits for the SC's point-in-time step (a fraction of a second), inside a freeze
of the guest's file systems when the volume is attached to a running instance
(clc/snapshot_freeze.py), and answers `pending`; the upload's progress arrives through
clc/volume_settler.py's pass."""

from __future__ import annotations

from typing import Any

from clc import snapshot_freeze, snapshots, tagging, volumes
from clc.api.query import apply_filters, paged
from clc.api.registry import Context, action
from clc.instances import owned as owned_instances
from clc.models.instances import Instance
from clc.models.volumes import Snapshot, Volume
from clc.snapshot_view import filters, snapshot_dict
from clc.storage_client import StorageClient
from services.errors import EC2Error
from services.messages.storage import CreateSnapshot as ScCreateSnapshot


def _storage(ctx: Context) -> StorageClient:
    if ctx.storage is None:
        raise EC2Error("Unavailable", "This cloud has no storage controller.", 503)
    return ctx.storage


def _check_tags(specs: list[dict[str, Any]] | None) -> None:
    for spec in specs or []:
        if spec.get("ResourceType") != "snapshot":
            raise EC2Error("InvalidParameterValue", f"'{spec.get('ResourceType')}' is not a valid "
                           "taggable resource type for this operation.")
        tagging.validated_tags(spec.get("Tags"))


def _running_guest(ctx: Context, volume: Volume) -> str | None:
    """The instance whose file systems to freeze: the one the volume is attached to, running."""
    if volume.attach_state != "attached" or volume.instance_id is None:
        return None
    instance = ctx.db.get(Instance, volume.instance_id)
    return instance.id if instance is not None and instance.state == "running" else None


def _snapshot_of(ctx: Context, volume: Volume, description: str,
                 specs: list[dict[str, Any]] | None, extra_tags: dict[str, str] | None = None) -> dict:
    if volume.state not in ("available", "in-use"):
        raise EC2Error("IncorrectState", f"The volume '{volume.id}' is in the '{volume.state}' state.")
    snapshot_id = ctx.new_id("snap")
    storage = _storage(ctx)
    if ctx.settler is not None:
        ctx.settler.unrecorded(ctx.db, snapshot_id)
    info, point = snapshot_freeze.taken(
        ctx.zones, volume.zone, _running_guest(ctx, volume), volume.id,
        lambda: storage.create_snapshot(volume.zone, ScCreateSnapshot(snapshot_id=snapshot_id,
                                                                      volume_id=volume.id)))
    consistency = point.consistency
    row = Snapshot(id=snapshot_id, account_id=ctx.account_id, volume_id=volume.id,
                   volume_size_gib=info.volume_size_gib, data_id=snapshot_id, zone=volume.zone,
                   description=description, state="pending", progress=0,
                   consistency=consistency, started_at=info.started_at)
    snapshots.settle(row, info)
    ctx.db.add(row)
    ctx.db.flush()
    tagging.set_tags(ctx.db, ctx.account_id, snapshot_id, "snapshot", dict(extra_tags or {}))
    tagging.apply_tag_specifications(ctx.db, ctx.account_id, specs, "snapshot", snapshot_id)
    tagging.set_tags(ctx.db, ctx.account_id, snapshot_id, "snapshot",
                     {snapshots.CONSISTENCY_TAG: consistency})
    ctx.trace("decided", f"{snapshot_id} of {volume.id}: point in time by {info.freeze_method} "
              f"in {info.freeze_ms:.1f} ms, {consistency}: {point.why}", consistency=consistency)
    tags = tagging.tags_by_resource(ctx.db, ctx.account_id, "snapshot", [snapshot_id])
    return snapshot_dict(row, tags.get(snapshot_id, {}))


@action("CreateSnapshot")
def create_snapshot(ctx: Context, VolumeId: str, Description: str = "",
                    TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    volume = volumes.one(ctx.db, ctx.account_id, VolumeId)
    _check_tags(TagSpecifications)
    return _snapshot_of(ctx, volume, Description, TagSpecifications)


@action("CreateSnapshots")
def create_snapshots(ctx: Context, InstanceSpecification: dict[str, Any], Description: str = "",
                     TagSpecifications: list[dict[str, Any]] | None = None,
                     CopyTagsFromSource: str | None = None) -> dict:
    instance = owned_instances(ctx.db, ctx.account_id, [InstanceSpecification.get("InstanceId", "")])[0]
    _check_tags(TagSpecifications)
    attached = volumes.attached_to(ctx.db, [instance.id])[instance.id]
    volume_tags = tagging.tags_by_resource(ctx.db, ctx.account_id, "volume", [v.id for v in attached])
    made = []
    for volume in attached:
        copied = volume_tags.get(volume.id, {}) if CopyTagsFromSource == "volume" else {}
        made.append(_snapshot_of(ctx, volume, Description, TagSpecifications, copied))
    return {"Snapshots": made}


@action("DeleteSnapshot")
def delete_snapshot(ctx: Context, SnapshotId: str) -> None:
    snapshot = snapshots.owned(ctx.db, ctx.account_id, SnapshotId)
    if snapshot.state == "pending":
        raise EC2Error("IncorrectState", f"The snapshot '{snapshot.id}' is still in progress "
                       f"({snapshot.progress}%).")
    if not snapshots.data_still_named(ctx.db, snapshot.data_id, snapshot.id):
        _storage(ctx).delete_snapshot(snapshot.zone, snapshot.data_id)
    tagging.delete_all_tags(ctx.db, ctx.account_id, snapshot.id)
    snapshots.reset_permission(ctx.db, snapshot)
    ctx.db.delete(snapshot)


@action("DescribeSnapshots")
def describe_snapshots(ctx: Context, SnapshotIds: list[str] | None = None,
                       OwnerIds: list[str] | None = None,
                       RestorableByUserIds: list[str] | None = None,
                       Filters: list[dict[str, Any]] | None = None,
                       MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    if SnapshotIds and MaxResults is not None:
        raise EC2Error("InvalidParameterCombination",
                       "The parameter snapshotSet cannot be used with the parameter maxResults")
    rows = snapshots.visible(ctx.db, ctx.account_id, SnapshotIds or None)
    if OwnerIds:
        owners = {ctx.account_id if o == "self" else o for o in OwnerIds}
        rows = [r for r in rows if r.account_id in owners]
    for user in RestorableByUserIds or []:
        account = ctx.account_id if user == "self" else user
        rows = [r for r in rows if r.account_id == account or r.is_public
                or account in snapshots.sharers(ctx.db, r.id)]
    tags = tagging.tags_by_resource(ctx.db, ctx.account_id, "snapshot", [r.id for r in rows])
    rows = apply_filters(rows, Filters, filters(), tags_of=lambda s: tags.get(s.id, {}))
    return paged("Snapshots", rows, MaxResults, NextToken,
                 lambda page: [snapshot_dict(s, tags.get(s.id, {})) for s in page])


def _attribute(attribute: str) -> str:
    if attribute not in ("createVolumePermission", "productCodes"):
        raise EC2Error("InvalidParameterValue",
                       f"Value ({attribute}) for parameter attribute is invalid. Unknown attribute.")
    return attribute


@action("DescribeSnapshotAttribute")
def describe_snapshot_attribute(ctx: Context, SnapshotId: str, Attribute: str) -> dict:
    snapshot = snapshots.owned(ctx.db, ctx.account_id, SnapshotId)
    if _attribute(Attribute) == "productCodes":
        return {"SnapshotId": snapshot.id, "ProductCodes": []}
    return {"SnapshotId": snapshot.id,
            "CreateVolumePermissions": snapshots.permission_list(ctx.db, snapshot)}


@action("ModifySnapshotAttribute")
def modify_snapshot_attribute(ctx: Context, SnapshotId: str, Attribute: str | None = None,
                              CreateVolumePermission: dict[str, Any] | None = None,
                              OperationType: str | None = None, UserIds: list[str] | None = None,
                              GroupNames: list[str] | None = None) -> None:
    snapshot = snapshots.owned(ctx.db, ctx.account_id, SnapshotId)
    if Attribute is not None and _attribute(Attribute) != "createVolumePermission":
        raise EC2Error("InvalidParameterValue", "Only createVolumePermission can be modified.")
    add = list((CreateVolumePermission or {}).get("Add") or [])
    remove = list((CreateVolumePermission or {}).get("Remove") or [])
    if OperationType is not None:
        if OperationType not in ("add", "remove"):
            raise EC2Error("InvalidParameterValue",
                           f"Value ({OperationType}) for parameter operationType is invalid.")
        given = [{"UserId": u} for u in UserIds or []] + [{"Group": g} for g in GroupNames or []]
        (add if OperationType == "add" else remove).extend(given)
    if not add and not remove:
        raise EC2Error("MissingParameter", "The request must contain the parameter "
                       "createVolumePermission or operationType with userIds or groupNames")
    snapshots.modify_permission(ctx.db, snapshot, add, remove)


@action("ResetSnapshotAttribute")
def reset_snapshot_attribute(ctx: Context, SnapshotId: str, Attribute: str) -> None:
    snapshot = snapshots.owned(ctx.db, ctx.account_id, SnapshotId)
    if _attribute(Attribute) == "createVolumePermission":
        snapshots.reset_permission(ctx.db, snapshot)


@action("CopySnapshot")
def copy_snapshot(ctx: Context, SourceRegion: str, SourceSnapshotId: str, Description: str = "",
                  TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    if SourceRegion != ctx.config.REGION:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({SourceRegion}) for parameter sourceRegion is invalid. "
                       f"This cloud has one region, {ctx.config.REGION}.")
    source = snapshots.restorable(ctx.db, ctx.account_id, SourceSnapshotId)
    _check_tags(TagSpecifications)
    snapshot_id = ctx.new_id("snap")
    # The copy shares the source's stored bytes, which are immutable.
    ctx.db.add(Snapshot(id=snapshot_id, account_id=ctx.account_id, volume_id=source.volume_id,
                        volume_size_gib=source.volume_size_gib, data_id=source.data_id,
                        zone=source.zone, description=Description or f"Copied from {source.id}",
                        state="completed", progress=100, consistency=source.consistency,
                        started_at=source.started_at, completed_at=source.completed_at))
    ctx.db.flush()
    tags = tagging.apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications, "snapshot",
                                            snapshot_id)
    tagging.set_tags(ctx.db, ctx.account_id, snapshot_id, "snapshot",
                     {snapshots.CONSISTENCY_TAG: source.consistency})
    result: dict[str, Any] = {"SnapshotId": snapshot_id}
    if tags:
        result["Tags"] = tags
    return result
