"""Instances as the CLC keeps them: the ONE function that moves an instance's state (and
records why), what a user may see, and look-ups by id that treat another account's instances
as missing.

States are EC2's: pending -> running -> shutting-down -> terminated (and stopping -> stopped
for EBS-backed instances, which eucasim does not launch yet). `desired_state` is what the
user asked for; the reconciliation loop (clc/reconcile.py) moves `state` towards it from what
the zone reports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clc.models.instances import Instance
from services.errors import EC2Error
from services.messages.node import StateReason

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}
# Which state may follow which; anything else is a bug or a stale report, and is refused.
ALLOWED = {
    "pending": {"running", "shutting-down", "terminated"},
    "running": {"pending", "shutting-down", "terminated", "stopping"},
    "shutting-down": {"terminated"},
    "terminated": set(),
    "stopping": {"stopped", "shutting-down", "terminated"},
    "stopped": {"pending", "shutting-down", "terminated"},
}
# Terminated instances stay visible this long, as in EC2.
KEEP_TERMINATED = timedelta(hours=1)

USER_SHUTDOWN = StateReason(code="Client.UserInitiatedShutdown",
                            message="Client.UserInitiatedShutdown: User initiated shutdown")
ID_PATTERN = re.compile(r"^i-[0-9a-f]{8}([0-9a-f]{9})?$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written in UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def server_error(message: str) -> StateReason:
    return StateReason(code="Server.InternalError", message=f"Server.InternalError: {message}")


def user_initiated(now: datetime | None = None) -> str:
    """EC2's StateTransitionReason for a user's request: `User initiated (2024-01-02 03:04:05 GMT)`."""
    return f"User initiated ({(now or utcnow()):%Y-%m-%d %H:%M:%S} GMT)"


class TransitionError(Exception):
    pass


def transition(instance: Instance, state: str, reason: StateReason | None = None,
               why: str | None = None, now: datetime | None = None) -> bool:
    """Move `instance` to `state`, recording the reason; False when it already is there.
    Raises TransitionError for a move EC2 never makes (e.g. out of terminated)."""
    if instance.state == state:
        if reason is not None and instance.state_reason_code is None:
            instance.state_reason_code, instance.state_reason_message = reason.code, reason.message
        return False
    if state not in ALLOWED.get(instance.state, set()):
        raise TransitionError(f"{instance.id}: {instance.state} -> {state} is not allowed")
    now = now or utcnow()
    instance.state = state
    if reason is not None:
        instance.state_reason_code, instance.state_reason_message = reason.code, reason.message
    elif state in ("pending", "running"):
        instance.state_reason_code = instance.state_reason_message = None
    if why is not None:
        instance.state_transition_reason = why
    if state == "terminated":
        instance.terminated_at = now
        instance.desired_state = "terminated"
    instance.updated_at = now
    return True


def visible(query, now: datetime | None = None):  # type: ignore[no-untyped-def]
    """Restrict a select of Instance to what users see: all but long-terminated instances."""
    cutoff = (now or utcnow()) - KEEP_TERMINATED
    return query.where(or_(Instance.state != "terminated", Instance.terminated_at.is_(None),
                           Instance.terminated_at >= cutoff))


def check_ids(instance_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(instance_ids))
    for instance_id in ids:
        if not ID_PATTERN.match(instance_id):
            raise EC2Error("InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"')
    return ids


def not_found(missing: list[str]) -> EC2Error:
    if len(missing) == 1:
        return EC2Error("InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
    return EC2Error("InvalidInstanceID.NotFound",
                    f"The instance IDs '{', '.join(missing)}' do not exist")


def owned(db: Session, account_id: str, instance_ids: Iterable[str] | None = None,
          *, strict: bool = True) -> list[Instance]:
    """The caller's visible instances (those named, in the order named, or all in launch
    order); an unknown or foreign id raises InvalidInstanceID.NotFound when `strict`."""
    query = visible(select(Instance).where(Instance.account_id == account_id))
    if instance_ids is None:
        return list(db.scalars(query.order_by(Instance.launched_at, Instance.reservation_id,
                                              Instance.launch_index)))
    ids = check_ids(instance_ids)
    found = {i.id: i for i in db.scalars(query.where(Instance.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing and strict:
        raise not_found(missing)
    return [found[i] for i in ids if i in found]


def exists(db: Session, account_id: str, instance_id: str) -> bool:
    return bool(owned(db, account_id, [instance_id], strict=False)) if ID_PATTERN.match(instance_id) else False


def request_termination(instance: Instance, now: datetime | None = None) -> str:
    """The user's TerminateInstances: record the wish (the loop and the caller carry it out)
    and move a live instance to shutting-down at once, as EC2 answers. Returns the state
    before."""
    before = instance.state
    if instance.state == "terminated":
        return before
    instance.desired_state = "terminated"
    if instance.node is None:  # never reached a node: nothing to stop
        transition(instance, "terminated", USER_SHUTDOWN, user_initiated(now), now)
    elif instance.state != "shutting-down":
        transition(instance, "shutting-down", USER_SHUTDOWN, user_initiated(now), now)
    return before
