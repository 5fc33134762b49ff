"""Instances as the CLC keeps them: the ONE function that moves an instance's state (and
records why), what a user may see, and look-ups by id that treat another account's instances
as missing.

States are EC2's: pending -> running -> shutting-down -> terminated, and for EBS-backed
instances running -> stopping -> stopped -> pending (StartInstances) again. `desired_state` is
what the user asked for (running, stopped or terminated); the reconciliation loop
(clc/reconcile.py) moves `state` towards it from what the zone reports.

Stopping an instance ends its domain on its node (the zone terminates it there, the instance
store with it) while the CLC keeps the instance, its addresses and its volumes' attachments;
starting it places it again, on whichever node the scheduler picks, with those volumes."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.orm import Session

from clc.models.instances import Instance, InstanceGroup
from clc.models.resources import SecurityGroup
from clc.security_groups import IN_USE_CHECKS
from clc.states import Moves, TransitionError  # noqa: F401 - callers catch it from here
# `aware` and `utcnow` are services.clock's; clc/instance_view.py reads `aware` from here.
from services.clock import KEEP_TERMINATED, aware, utcnow  # noqa: F401
from services.errors import EC2Error
from services.ids import INSTANCE_ID
from services.messages.node import StateReason

InstanceState = Literal["pending", "running", "shutting-down", "terminated", "stopping", "stopped"]
STATE_CODES: dict[InstanceState, int] = {"pending": 0, "running": 16, "shutting-down": 32,
                                         "terminated": 48, "stopping": 64, "stopped": 80}
# The instance's state machine: which state may follow which. Anything else is a bug or a
# stale report (a poll answered before a push and read after it), and is refused.
MOVES = Moves[InstanceState]("instance", {
    # pending -> stopped: a start that could not be carried out (no room): stopped again.
    "pending":       {"running", "shutting-down", "terminated", "stopped"},
    "running":       {"shutting-down", "terminated", "stopping"},
    "shutting-down": {"terminated"},
    "stopping":      {"stopped", "shutting-down", "terminated"},
    "stopped":       {"pending", "shutting-down", "terminated"},
    "terminated":    set(),
})
LIVE: frozenset[InstanceState] = frozenset({"pending", "running"})

USER_SHUTDOWN = StateReason(code="Client.UserInitiatedShutdown",
                            message="Client.UserInitiatedShutdown: User initiated shutdown")


def server_error(message: str) -> StateReason:
    return StateReason(code="Server.InternalError", message=f"Server.InternalError: {message}")


def insufficient_capacity(message: str) -> StateReason:
    return StateReason(code="Server.InsufficientInstanceCapacity",
                       message=f"Server.InsufficientInstanceCapacity: {message}")


def user_initiated(now: datetime | None = None) -> str:
    """EC2's StateTransitionReason for a user's request: `User initiated (2024-01-02 03:04:05 GMT)`."""
    return f"User initiated ({(now or utcnow()):%Y-%m-%d %H:%M:%S} GMT)"


def state(instance: Instance) -> InstanceState:
    return cast(InstanceState, instance.state)


def transition(instance: Instance, to: InstanceState, reason: StateReason | None = None, *,
               why: str | None = None, now: datetime | None = None) -> bool:
    """THE place an instance's state and StateReason change. Moving to another state is checked
    against MOVES (TransitionError otherwise) and records `reason`; a live state reached
    without one clears the old. Staying in a live state is news about the instance (its node
    went down, or came back): the reason becomes `reason`. A final state never changes.
    True when anything changed."""
    before = state(instance)
    if before == to:
        if MOVES.final(to) or (instance.state_reason_code, instance.state_reason_message) == (
                (reason.code, reason.message) if reason else (None, None)):
            return False
    else:
        MOVES.check(instance.id, before, to)
        instance.state = to
    now = now or utcnow()
    if reason is not None or to in LIVE:
        instance.state_reason_code = reason.code if reason else None
        instance.state_reason_message = reason.message if reason else None
    if why is not None:
        instance.state_transition_reason = why
    if to == "terminated":
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
        if not INSTANCE_ID.match(instance_id):
            raise EC2Error("InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"')
    return ids


def not_found(missing: list[str]) -> EC2Error:
    if len(missing) == 1:
        return EC2Error("InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
    return EC2Error("InvalidInstanceID.NotFound",
                    f"The instance IDs '{', '.join(missing)}' do not exist")


# An instance as a read-only tuple with the model's attribute names, what `owned(plain=True)`
# returns (SQLAlchemy's Row reads attributes by name several times slower than a namedtuple):
# every column but the user data (up to 16 KiB each, never part of a Describe answer) and
# updated_at (a datetime to parse per row that no answer shows).
_PLAIN_COLUMNS = [c for c in Instance.__table__.c if c.key not in ("user_data_b64", "updated_at")]
InstanceRow = namedtuple("InstanceRow", [c.key for c in _PLAIN_COLUMNS])  # type: ignore[misc]

# DescribeInstances by id (what a client polling one launch sends many times a second), built
# once: making and keying a select costs more CPU than SQLite spends running it.
_PLAIN_BY_IDS = (select(*_PLAIN_COLUMNS)
                 .where(Instance.account_id == bindparam("account"),
                        Instance.id.in_(bindparam("ids", expanding=True)),
                        or_(Instance.state != "terminated", Instance.terminated_at.is_(None),
                            Instance.terminated_at >= bindparam("cutoff"))))


def owned(db: Session, account_id: str, instance_ids: Iterable[str] | None = None,
          *, strict: bool = True, plain: bool = False,
          states: Sequence[str] | None = None) -> list[Instance]:
    """The caller's visible instances (those named, in the order named, or all in launch
    order); an unknown or foreign id raises InvalidInstanceID.NotFound when `strict`.
    `plain` gives read-only rows with the same attribute names instead of ORM objects, several
    times cheaper to load, for answers that only read them (DescribeInstances); `states`, when
    given, keeps only instances in those states (all of them, not by id)."""
    if instance_ids is not None and plain:
        ids = check_ids(instance_ids)
        rows = db.connection().execute(_PLAIN_BY_IDS, {"account": account_id, "ids": ids,
                                                       "cutoff": utcnow() - KEEP_TERMINATED})
        found = {i.id: i for i in map(InstanceRow._make, rows)}
    else:
        query = visible((select(*_PLAIN_COLUMNS) if plain else select(Instance))
                        .where(Instance.account_id == account_id))
        if states is not None:
            query = query.where(Instance.state.in_(states))
        run = (lambda q: map(InstanceRow._make, db.execute(q))) if plain else db.scalars
        if instance_ids is None:
            return list(run(query.order_by(Instance.launched_at, Instance.reservation_id,
                                           Instance.launch_index)))
        ids = check_ids(instance_ids)
        found = {i.id: i for i in run(query.where(Instance.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing and strict:
        raise not_found(missing)
    return [found[i] for i in ids if i in found]


def exists(db: Session, account_id: str, instance_id: str) -> bool:
    return bool(owned(db, account_id, [instance_id], strict=False)) if INSTANCE_ID.match(instance_id) else False


def request_termination(instance: Instance, now: datetime | None = None) -> str:
    """The user's TerminateInstances: record the wish (the loop and the caller carry it out)
    and move a live instance to shutting-down at once, as EC2 answers. Returns the state
    before."""
    before = instance.state
    if instance.state == "terminated":
        return before
    instance.desired_state = "terminated"
    if instance.node is None:  # never reached a node: nothing to stop
        transition(instance, "terminated", USER_SHUTDOWN, why=user_initiated(now), now=now)
    elif instance.state != "shutting-down":
        transition(instance, "shutting-down", USER_SHUTDOWN, why=user_initiated(now), now=now)
    return before


def ebs_backed(instance: Instance) -> bool:
    return instance.root_device_type == "ebs"


def request_stop(instance: Instance, now: datetime | None = None) -> None:
    """The user's StopInstances on an EBS-backed instance: running -> stopping at once (the
    zone then ends its domain, and its report moves it to stopped)."""
    if instance.state in ("stopping", "stopped"):
        return
    if instance.state != "running":
        raise EC2Error("IncorrectInstanceState",
                       f"The instance '{instance.id}' is not in a state from which it can be stopped.")
    instance.desired_state = "stopped"
    transition(instance, "stopping", USER_SHUTDOWN, why=user_initiated(now), now=now)


def stopped_on_zone(instance: Instance, now: datetime | None = None) -> bool:
    """The zone no longer runs the instance it was asked to stop: stopped, on no node."""
    instance.node = None
    return transition(instance, "stopped", USER_SHUTDOWN, now=now)


def request_start(instance: Instance, now: datetime | None = None) -> bool:
    """The user's StartInstances: stopped -> pending, with a new LaunchTime (as EC2 shows it).
    False when there is nothing to start (it is pending or running already)."""
    if instance.state in ("pending", "running"):
        return False
    if instance.state != "stopped":
        raise EC2Error("IncorrectInstanceState",
                       f"The instance '{instance.id}' is not in a state from which it can be started.")
    now = now or utcnow()
    instance.desired_state = "running"
    instance.node = None
    instance.launched_at = now
    transition(instance, "pending", why="", now=now)
    return True


def set_groups(db: Session, instance: Instance, groups: Iterable[SecurityGroup]) -> None:
    """ModifyInstanceAttribute's groupSet: the instance's groups become `groups`, in order."""
    db.execute(delete(InstanceGroup).where(InstanceGroup.instance_id == instance.id))
    db.add_all(InstanceGroup(instance_id=instance.id, group_id=g.id, group_name=g.name) for g in groups)


def _group_used_by_instances(db: Session, group: SecurityGroup) -> str | None:
    """A group stays while a live instance is in it (EC2's InvalidGroup.InUse)."""
    users = db.scalars(select(Instance.id).join(InstanceGroup, InstanceGroup.instance_id == Instance.id)
                       .where(InstanceGroup.group_id == group.id, Instance.state != "terminated")
                       .order_by(Instance.id)).all()
    if not users:
        return None
    return f"There are active instances using security group '{group.name}': {', '.join(users)}"


IN_USE_CHECKS.append(_group_used_by_instances)
