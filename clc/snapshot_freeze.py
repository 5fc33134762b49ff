"""The point in time of a snapshot, made application-consistent where it can be: when the volume
is attached to a running instance, the instance's file systems are frozen (CLC -> CC -> NC ->
the guest agent, services/messages/freeze.py) around the SC's point-in-time step and thawed
right after it, whether the step succeeded or not.

The snapshot is `application-consistent` only when the freeze held for the whole step: the
NC froze the guest, and the thaw that followed found it still frozen (had the NC's own
watchdog thawed it first, the step outlived the freeze). Otherwise it is `crash-consistent`:
what a power cut would have left on the disk, which is what a volume not attached to a running
guest, a guest without an agent, or libvirt's test driver gives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from clc.storage_client import ScStorageClient
from clc.zones_client import ZoneClient, ZoneError
from services.messages.freeze import FreezeFilesystems, FreezeResult, ThawFilesystems

LOG = logging.getLogger(__name__)

Consistency = Literal["application-consistent", "crash-consistent"]
T = TypeVar("T")

# The NC thaws by itself after this long without a thaw: longer than the SC's step may take
# (its call's timeout), so only a CLC that died in between leaves the thaw to the watchdog.
THAW_AFTER_S = ScStorageClient.CALL_TIMEOUT + 30.0


@dataclass(frozen=True)
class PointInTime:
    consistency: Consistency
    why: str                        # for the trace: how the consistency was decided
    freeze: FreezeResult | None = None
    thaw: FreezeResult | None = None


def taken(zones: ZoneClient | None, zone: str, instance_id: str | None, volume_id: str,
          step: Callable[[], T]) -> tuple[T, PointInTime]:
    """Run the SC's point-in-time `step`, inside a freeze of `instance_id`'s file systems when
    there is one to freeze (None: the volume is not attached to a running instance)."""
    if instance_id is None or zones is None:
        return step(), PointInTime("crash-consistent", f"{volume_id} is not attached to a running instance")
    try:
        frozen = zones.freeze(zone, instance_id, FreezeFilesystems(volume_id=volume_id,
                                                                   thaw_after_s=THAW_AFTER_S))
    except ZoneError as exc:
        return step(), PointInTime("crash-consistent", f"{instance_id} could not be frozen: "
                                   f"{exc.code}: {exc.message}")
    if not frozen.frozen:
        return step(), PointInTime("crash-consistent", f"{instance_id} was not frozen: {frozen.reason}",
                                   freeze=frozen)
    thawed: FreezeResult | None = None
    try:
        result = step()
    finally:
        # Always thaw, also when the SC's step failed; a thaw that fails is left to the NC's
        # watchdog, and the snapshot cannot claim the freeze held.
        try:
            thawed = zones.thaw(zone, instance_id, ThawFilesystems(volume_id=volume_id))
        except ZoneError as exc:
            LOG.warning("thaw %s after the snapshot of %s: %s (the NC thaws it by itself within "
                        "%.0f s)", instance_id, volume_id, exc, THAW_AFTER_S)
    if thawed is None or thawed.filesystems == 0:
        return result, PointInTime("crash-consistent", f"the freeze of {instance_id} did not last "
                                   "until the thaw", freeze=frozen, thaw=thawed)
    return result, PointInTime("application-consistent",
                               f"{frozen.filesystems} file system(s) of {instance_id} frozen around "
                               "the point-in-time step", freeze=frozen, thaw=thawed)
