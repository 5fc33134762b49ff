"""Snapshots as the CLC keeps them: THE function that moves a snapshot's state, who may see
and restore one (its owner, the accounts it is shared with, everyone when public), and the
createVolumePermission rules.

States are EC2's: pending -> completed, or error. The SC takes the point-in-time step while
CreateSnapshot waits and uploads to Walrus afterwards; its SnapshotInfo's progress becomes
the snapshot's (clc/volume_settler.py polls it). A CopySnapshot shares the stored bytes of its
source (`data_id`), so the bytes leave Walrus only with the last snapshot that names them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Literal, cast

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from clc import tagging
from clc.models.volumes import Snapshot, SnapshotPermission
from clc.states import Moves
from services.clock import aware, utcnow
from services.errors import EC2Error
from services.ids import SNAPSHOT_ID
from services.messages.storage import SnapshotInfo

SnapshotState = Literal["pending", "completed", "error"]
MOVES = Moves[SnapshotState]("snapshot", {
    "pending":   {"completed", "error"},
    "completed": set(),
    "error":     set(),
})
CONSISTENCY_TAG = "eucasim:consistency"
UNKNOWN_GRACE = timedelta(minutes=2)


def transition(snapshot: Snapshot, to: SnapshotState, *, progress: int | None = None,
               reason: str | None = None) -> bool:
    """THE place a snapshot's state and progress change; True when anything changed."""
    before = cast(SnapshotState, snapshot.state)
    if before != to:
        MOVES.check(snapshot.id, before, to)
        snapshot.state = to
    changed = before != to
    if progress is not None and progress != snapshot.progress:
        snapshot.progress, changed = progress, True
    if to == "completed":
        snapshot.progress = 100
        snapshot.completed_at = snapshot.completed_at or utcnow()
    if reason is not None:
        snapshot.reason_message = reason
    return changed


def settle(snapshot: Snapshot, info: SnapshotInfo | None) -> None:
    """A pending snapshot takes what its SC reports. One its SC does not know is lost once it
    is older than UNKNOWN_GRACE (younger, it may be a CreateSnapshot still being answered)."""
    if info is None:
        if (aware(snapshot.started_at) or utcnow()) < utcnow() - UNKNOWN_GRACE:
            transition(snapshot, "error", reason=f"the storage controller of zone "
                       f"{snapshot.zone} lost the snapshot")
    elif info.state == "completed":
        transition(snapshot, "completed")
    elif info.state == "error":
        transition(snapshot, "error", progress=info.progress,
                   reason=info.reason.message if info.reason else "the upload failed")
    else:
        transition(snapshot, "pending", progress=min(info.progress, 99))


# ------------------------------------------------------------------------------- look-ups

def not_found(missing: list[str]) -> EC2Error:
    if len(missing) == 1:
        return EC2Error("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
    return EC2Error("InvalidSnapshot.NotFound",
                    f"The snapshots '{', '.join(missing)}' do not exist.")


def check_ids(snapshot_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(snapshot_ids))
    for snapshot_id in ids:
        if not SNAPSHOT_ID.match(snapshot_id):
            raise EC2Error("InvalidSnapshotID.Malformed", f'Invalid id: "{snapshot_id}"')
    return ids


def _restorable_by(account_id: str):  # type: ignore[no-untyped-def]
    shared = select(SnapshotPermission.snapshot_id).where(SnapshotPermission.account_id == account_id)
    return or_(Snapshot.account_id == account_id, Snapshot.is_public.is_(True),
               Snapshot.id.in_(shared))


def visible(db: Session, account_id: str, snapshot_ids: Iterable[str] | None = None) -> list[Snapshot]:
    """The snapshots `account_id` may see and restore (its own, shared with it, public), those
    named in the order named (an unknown or hidden one: InvalidSnapshot.NotFound)."""
    query = select(Snapshot).where(_restorable_by(account_id))
    if snapshot_ids is None:
        return list(db.scalars(query.order_by(Snapshot.started_at, Snapshot.id)))
    ids = check_ids(snapshot_ids)
    found = {s.id: s for s in db.scalars(query.where(Snapshot.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise not_found(missing)
    return [found[i] for i in ids]


def owned(db: Session, account_id: str, snapshot_id: str) -> Snapshot:
    check_ids([snapshot_id])
    row = db.scalar(select(Snapshot).where(Snapshot.id == snapshot_id,
                                           Snapshot.account_id == account_id))
    if row is None:
        raise not_found([snapshot_id])
    return row


def exists(db: Session, account_id: str, snapshot_id: str) -> bool:
    return bool(SNAPSHOT_ID.match(snapshot_id)) and db.scalar(
        select(Snapshot.id).where(Snapshot.id == snapshot_id,
                                  Snapshot.account_id == account_id)) is not None


tagging.register_resource("snap", "snapshot", exists, lambda rid: not_found([rid]))


def restorable(db: Session, account_id: str, snapshot_id: str) -> Snapshot:
    """A snapshot a new volume may start from: visible to the caller and complete."""
    snapshot = visible(db, account_id, [snapshot_id])[0]
    if snapshot.state != "completed":
        raise EC2Error("IncorrectState", f"Snapshot '{snapshot.id}' is not 'completed' "
                       f"(it is {snapshot.state}, {snapshot.progress}%).")
    return snapshot


def sharers(db: Session, snapshot_id: str) -> list[str]:
    return list(db.scalars(select(SnapshotPermission.account_id)
                           .where(SnapshotPermission.snapshot_id == snapshot_id)
                           .order_by(SnapshotPermission.account_id)))


def data_still_named(db: Session, data_id: str, other_than: str) -> bool:
    """Whether a snapshot other than `other_than` (a copy, or the original) keeps these bytes."""
    return bool(db.scalar(select(func.count()).select_from(Snapshot).where(
        Snapshot.data_id == data_id, Snapshot.id != other_than)))


# ------------------------------------------------------------------------------- permissions

def modify_permission(db: Session, snapshot: Snapshot, add: list[dict], remove: list[dict]) -> None:
    """createVolumePermission's Add/Remove lists: {"UserId": account} or {"Group": "all"}."""
    for entry in add + remove:
        group, user = entry.get("Group"), entry.get("UserId")
        if group is not None and group != "all":
            raise EC2Error("InvalidParameterValue",
                           f"Value ({group}) for parameter group is invalid. Only 'all' is allowed.")
        if user is not None and not (str(user).isdigit() and len(str(user)) == 12):
            raise EC2Error("InvalidParameterValue",
                           f"Value ({user}) for parameter userId is invalid. "
                           "An account id is 12 digits.")
        if group is None and user is None:
            raise EC2Error("InvalidParameterValue", "A permission names a UserId or a Group.")
    existing = set(sharers(db, snapshot.id))
    for entry in add:
        if entry.get("Group") == "all":
            snapshot.is_public = True
        elif entry.get("UserId") and entry["UserId"] not in existing:
            db.add(SnapshotPermission(snapshot_id=snapshot.id, account_id=str(entry["UserId"])))
            existing.add(entry["UserId"])
    for entry in remove:
        if entry.get("Group") == "all":
            snapshot.is_public = False
        elif entry.get("UserId"):
            for row in db.scalars(select(SnapshotPermission).where(
                    SnapshotPermission.snapshot_id == snapshot.id,
                    SnapshotPermission.account_id == str(entry["UserId"]))):
                db.delete(row)


def reset_permission(db: Session, snapshot: Snapshot) -> None:
    snapshot.is_public = False
    for row in db.scalars(select(SnapshotPermission).where(
            SnapshotPermission.snapshot_id == snapshot.id)):
        db.delete(row)


def permission_list(db: Session, snapshot: Snapshot) -> list[dict[str, str]]:
    result = [{"Group": "all"}] if snapshot.is_public else []
    return result + [{"UserId": account} for account in sharers(db, snapshot.id)]
