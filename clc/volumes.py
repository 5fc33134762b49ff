"""Volumes as the CLC keeps them: THE function that moves a volume's state and THE function
that moves its attachment's (each records why), look-ups that treat another account's volume
as missing, and the rules CreateVolume, DeleteVolume, ModifyVolume and AttachVolume check
before anything changes.

States are EC2's: creating -> available -> in-use -> deleting -> deleted, or error; an
attachment goes attaching -> attached -> detaching -> detached (a detached attachment is no
attachment: its columns are cleared and the volume is available again). The CLC records what
the user asked; the zone's SC reports what exists, and clc/volume_settler.py settles the one
towards the other."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from clc import tagging
from clc.models.volumes import Volume
from clc.states import Moves, TransitionError  # noqa: F401 - callers catch it from here
from services.clock import utcnow
from services.errors import EC2Error
from services.ids import VOLUME_ID
from services.messages.node import StateReason

VolumeState = Literal["creating", "available", "in-use", "deleting", "deleted", "error"]
AttachState = Literal["attaching", "attached", "detaching", "detached"]

MOVES = Moves[VolumeState]("volume", {
    "creating":  {"available", "error", "deleting"},
    "available": {"in-use", "deleting", "error"},
    "in-use":    {"available", "error"},
    "deleting":  {"deleted", "error"},
    "error":     {"deleting", "deleted"},
    "deleted":   set(),
})
# "detached" is where an attachment ends; from it only a new attach begins.
ATTACH_MOVES = Moves[AttachState]("attachment", {
    "detached":  {"attaching"},
    "attaching": {"attached", "detaching", "detached"},
    "attached":  {"detaching", "detached"},
    "detaching": {"detached", "attached"},
})

# AttachVolume and DetachVolume decide on a volume's attachment from what they read: each reads,
# decides and commits under this lock, so of two concurrent attaches of one volume the second
# reads the first's attachment (VolumeInUse) instead of both winning. Database work only.
ATTACHMENTS = threading.Lock()

VOLUME_TYPES = ("standard", "gp2", "gp3")
# EC2's size bounds per type, in GiB.
SIZE_RANGE = {"standard": (1, 1024), "gp2": (1, 16384), "gp3": (1, 16384)}
# The names a user may give an EBS volume's device (the root and ephemeral disks are sda1/sda2).
DEVICE = re.compile(r"^(/dev/)?(sd[b-z]|xvd[b-z]|vd[b-z]|hd[b-z])[0-9]{0,2}$")
INSTANCE_DEVICES = frozenset({"sda", "sda1", "sda2", "sda3", "xvda", "vda"})


def state(volume: Volume) -> VolumeState:
    return cast(VolumeState, volume.state)


def attach_state(volume: Volume) -> AttachState:
    return cast(AttachState, volume.attach_state or "detached")


def transition(volume: Volume, to: VolumeState, reason: StateReason | None = None, *,
               now: datetime | None = None) -> bool:
    """THE place a volume's state changes: checked against MOVES (TransitionError otherwise),
    recording `reason` (a move without one keeps no stale reason, except into available, which
    keeps why an attachment was given up until the next one). True when anything changed."""
    before = state(volume)
    if before == to and (reason is None or (volume.reason_code, volume.reason_message)
                         == (reason.code, reason.message)):
        return False
    if before != to:
        MOVES.check(volume.id, before, to)
        volume.state = to
    if reason is not None:
        volume.reason_code, volume.reason_message = reason.code, reason.message
    elif to not in ("available",):
        volume.reason_code = volume.reason_message = None
    volume.updated_at = now or utcnow()
    return True


def move_attachment(volume: Volume, to: AttachState, reason: StateReason | None = None, *,
                    instance_id: str | None = None, device: str | None = None,
                    now: datetime | None = None) -> None:
    """THE place an attachment changes, keeping the volume's state in step: attaching makes it
    in-use, detached makes it available again (with `reason` when the attachment was given up
    rather than asked away)."""
    ATTACH_MOVES.check(volume.id, attach_state(volume), to)
    now = now or utcnow()
    if to == "attaching":
        assert instance_id and device
        transition(volume, "in-use", now=now)
        volume.instance_id, volume.device, volume.attach_time = instance_id, device, now
        volume.attach_node = None
        volume.force_detach = False
    if to == "detached":
        volume.instance_id = volume.device = volume.attach_time = volume.attach_node = None
        volume.attach_state = None
        volume.force_detach = False
        if state(volume) == "in-use":
            transition(volume, "available", reason, now=now)
        return
    volume.attach_state = to
    volume.updated_at = now


# ------------------------------------------------------------------------------- look-ups

def not_found(missing: list[str]) -> EC2Error:
    if len(missing) == 1:
        return EC2Error("InvalidVolume.NotFound", f"The volume '{missing[0]}' does not exist.")
    return EC2Error("InvalidVolume.NotFound", f"The volumes '{', '.join(missing)}' do not exist.")


def check_ids(volume_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(volume_ids))
    for volume_id in ids:
        if not VOLUME_ID.match(volume_id):
            raise EC2Error("InvalidVolumeID.Malformed", f'Invalid id: "{volume_id}"')
    return ids


def owned(db: Session, account_id: str, volume_ids: Iterable[str] | None = None) -> list[Volume]:
    """The caller's volumes that still exist (those named, in the order named, or all by
    creation); an unknown, deleted or foreign id raises InvalidVolume.NotFound."""
    query = select(Volume).where(Volume.account_id == account_id, Volume.state != "deleted")
    if volume_ids is None:
        return list(db.scalars(query.order_by(Volume.created_at, Volume.id)))
    ids = check_ids(volume_ids)
    found = {v.id: v for v in db.scalars(query.where(Volume.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise not_found(missing)
    return [found[i] for i in ids]


def one(db: Session, account_id: str, volume_id: str) -> Volume:
    return owned(db, account_id, [volume_id])[0]


def exists(db: Session, account_id: str, volume_id: str) -> bool:
    return bool(VOLUME_ID.match(volume_id)) and db.scalar(
        select(Volume.id).where(Volume.account_id == account_id, Volume.id == volume_id,
                                Volume.state != "deleted")) is not None


tagging.register_resource("vol", "volume", exists, lambda rid: not_found([rid]))


_ATTACHED_TO = (select(Volume).where(Volume.instance_id.in_(bindparam("ids", expanding=True)))
                .order_by(Volume.device))  # built once: DescribeInstances asks on every call


def attached_to(db: Session, instance_ids: Iterable[str]) -> dict[str, list[Volume]]:
    """instance id -> the volumes attached or being attached to it, by device."""
    ids = list(instance_ids)
    result: dict[str, list[Volume]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        for row in db.scalars(_ATTACHED_TO, {"ids": ids[start:start + 500]}):
            result[row.instance_id].append(row)  # type: ignore[index]
    return result


# ------------------------------------------------------------------------------- rules

def volume_type(given: str | None) -> str:
    chosen = given or "standard"
    if chosen not in VOLUME_TYPES:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({chosen}) for parameter volumeType is invalid. "
                       f"eucasim offers {', '.join(VOLUME_TYPES)}.")
    return chosen


def check_size(size_gib: int, kind: str) -> None:
    low, high = SIZE_RANGE[kind]
    if size_gib < low:
        raise EC2Error("InvalidParameterValue",
                       f"Volume of {size_gib}GiB is too small; minimum is {low}GiB.")
    if size_gib > high:
        raise EC2Error("InvalidParameterValue",
                       f"Volume of {size_gib}GiB is too large; maximum is {high}GiB.")


def short_device(device: str) -> str:
    """/dev/sdc and sdc name the same device."""
    return device.removeprefix("/dev/")


def disk_of(device: str) -> str:
    """The whole disk a device name lands on in the guest, as the NC maps names to libvirt
    targets: /dev/xvdc, hdc and sdc are all `sdc` (one SCSI bus), and sdc1 is a partition of
    sdc. Two names with the same disk cannot both be attached."""
    short = short_device(device).rstrip("0123456789")
    for alias in ("xvd", "hd"):
        if short.startswith(alias):
            return "sd" + short[len(alias):]
    return short


def check_device(device: str, in_use: Iterable[str]) -> str:
    """The device as the user named it, when the instance may take a volume there."""
    if not DEVICE.match(device):
        raise EC2Error("InvalidParameterValue",
                       f"Value ({device}) for parameter device is invalid. "
                       f"{device} is not a valid EBS device name.")
    taken = {disk_of(d) for d in [*in_use, *INSTANCE_DEVICES]}
    if disk_of(device) in taken:
        raise EC2Error("InvalidParameterValue",
                       f"Invalid value '{device}' for unixDevice. "
                       f"Attachment point {device} is already in use")
    return device


def check_deletable(volume: Volume) -> None:
    if volume.instance_id is not None or state(volume) == "in-use":
        raise EC2Error("VolumeInUse", f"Volume {volume.id} is currently attached to "
                       f"{volume.instance_id}")
    if state(volume) not in ("available", "error"):
        raise EC2Error("IncorrectState",
                       f"The volume '{volume.id}' is in the '{volume.state}' state.")


def check_attachable(volume: Volume) -> None:
    if volume.instance_id is not None:
        raise EC2Error("VolumeInUse", f"{volume.id} is already attached to an instance")
    if state(volume) != "available":
        raise EC2Error("IncorrectState", f"{volume.id} is not 'available'.")


# ------------------------------------------------------------------------------- records

def by_client_token(db: Session, account_id: str, token: str) -> Volume | None:
    return db.scalar(select(Volume).where(Volume.account_id == account_id,
                                          Volume.client_token == token))


def record_new(db: Session, volume: Volume) -> Volume:
    db.add(volume)
    db.flush()
    return volume


def devices_of(db: Session, instance_id: str) -> list[str]:
    return [v.device for v in attached_to(db, [instance_id])[instance_id] if v.device]
