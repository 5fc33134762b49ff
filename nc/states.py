"""The one place an instance's state changes: EC2's states, the transitions an NC may make,
and the StateReason recorded with each change."""

from __future__ import annotations

from sqlalchemy.orm import Session

from nc.models import InstanceRecord
from services.clock import utcnow
from services.messages.node import InstanceState, StateReason

ALLOWED: dict[str, frozenset[str]] = {
    # pending -> terminated: the launch failed (EC2 shows such instances terminated with a reason).
    "pending": frozenset({"running", "shutting-down", "terminated"}),
    # running -> terminated: the domain died and could not be restarted.
    "running": frozenset({"shutting-down", "terminated"}),
    "shutting-down": frozenset({"terminated"}),
    "terminated": frozenset(),
}
LIVE_STATES = ("pending", "running", "shutting-down")

USER_SHUTDOWN = StateReason(code="Client.UserInitiatedShutdown",
                            message="Client.UserInitiatedShutdown: User initiated shutdown")


def internal_error(message: str) -> StateReason:
    return StateReason(code="Server.InternalError", message=f"Server.InternalError: {message}")


class TransitionError(Exception):
    """A change the instance's current state does not allow (answered with 409)."""


def transition(session: Session, record: InstanceRecord, new: InstanceState,
               reason: StateReason | None = None) -> None:
    """Move `record` to `new`, keeping the reason (a later change without one keeps the old,
    so a failed launch still says why once it is terminated)."""
    if new != record.state and new not in ALLOWED[record.state]:
        raise TransitionError(f"{record.instance_id} is {record.state}; it cannot become {new}")
    record.state = new
    if reason is not None:
        record.reason_code, record.reason_message = reason.code, reason.message
    record.updated_at = utcnow()
    session.add(record)


def reason_of(record: InstanceRecord) -> StateReason | None:
    if record.reason_code is None:
        return None
    return StateReason(code=record.reason_code, message=record.reason_message or "")
