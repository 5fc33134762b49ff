"""The ONE place a volume's or a snapshot's state changes: each move is checked against the
moves EC2 makes and records why (a StateReason), so nothing sets `state = "available"` from
three places.

Volumes: creating -> available -> in-use -> available -> deleting -> deleted, or error.
Snapshots: pending -> completed, or error; then deleting -> deleted."""

from __future__ import annotations

from datetime import datetime

from sc.models import Snapshot, Volume
from services.clock import utcnow
from services.messages.storage import StateReason

VOLUME_MOVES = {
    "creating": {"available", "error"},
    "available": {"in-use", "deleting", "error"},
    "in-use": {"available", "error"},
    "deleting": {"deleted", "error"},
    "error": {"deleting"},
    "deleted": set(),
}
SNAPSHOT_MOVES = {
    "pending": {"completed", "error"},
    "completed": {"deleting"},
    "error": {"deleting"},
    "deleting": {"deleted", "error"},
    "deleted": set(),
}


class TransitionError(Exception):
    """A move EC2 never makes: a bug or a stale request, refused."""


def _check(kind: str, ident: str, moves: dict[str, set[str]], old: str, new: str) -> None:
    if new not in moves.get(old, set()):
        raise TransitionError(f"{kind} {ident}: {old} -> {new} is not allowed")


def move_volume(volume: Volume, state: str, reason: StateReason | None = None,
                now: datetime | None = None) -> bool:
    """Move `volume` to `state`, recording `reason` (cleared when None); False when it already
    is there. Raises TransitionError for a move EC2 never makes."""
    if volume.state == state:
        return False
    _check("volume", volume.id, VOLUME_MOVES, volume.state, state)
    volume.state = state
    volume.reason_code, volume.reason_message = (reason.code, reason.message) if reason else (None, None)
    volume.updated_at = now or utcnow()
    if state == "available":
        volume.progress = 100
    return True


def move_snapshot(snapshot: Snapshot, state: str, reason: StateReason | None = None,
                  now: datetime | None = None) -> bool:
    """Move `snapshot` to `state`, recording `reason`; False when it already is there."""
    if snapshot.state == state:
        return False
    _check("snapshot", snapshot.id, SNAPSHOT_MOVES, snapshot.state, state)
    now = now or utcnow()
    snapshot.state = state
    snapshot.reason_code, snapshot.reason_message = (reason.code, reason.message) if reason else (None, None)
    snapshot.updated_at = now
    if state == "completed":
        snapshot.progress = 100
        snapshot.completed_at = now
    return True


def server_error(message: str) -> StateReason:
    return StateReason(code="Server.InternalError", message=message)
