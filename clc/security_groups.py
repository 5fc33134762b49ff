"""Security groups as other behaviour looks them up: by id or name within an account, the
`default` group every account has, and the checks that keep a group while something uses it.
The EC2 surface (clc/api/security_groups.py) and launches (clc/launch.py) both call these;
this module imports no handler."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc.models.resources import SecurityGroup
from services.errors import EC2Error

DEFAULT_GROUP = "default"

# Families that put things in groups (instances) add a check here: given a group about to be
# deleted, return a message when something still uses it (the deletion then fails with
# InvalidGroup.InUse).
InUseCheck = Callable[[Session, SecurityGroup], str | None]
IN_USE_CHECKS: list[InUseCheck] = []


def not_found(name_or_id: str) -> EC2Error:
    return EC2Error("InvalidGroup.NotFound", f"The security group '{name_or_id}' does not exist")


def check_id(group_id: str) -> None:
    if not group_id.startswith("sg-") or len(group_id) <= 3:
        raise EC2Error("InvalidGroupId.Malformed", f'Invalid id: "{group_id}" (expecting "sg-...")')


def find_group(db: Session, account_id: str, group_id: str | None = None,
               group_name: str | None = None) -> SecurityGroup:
    """The caller's group by id (preferred) or name; InvalidGroup.NotFound otherwise, also for
    another account's group."""
    if group_id:
        check_id(group_id)
        row = db.scalar(select(SecurityGroup).where(SecurityGroup.account_id == account_id,
                                                    SecurityGroup.id == group_id))
        if row is None:
            raise not_found(group_id)
        return row
    if group_name:
        row = db.scalar(select(SecurityGroup).where(SecurityGroup.account_id == account_id,
                                                    SecurityGroup.name == group_name))
        if row is None:
            raise not_found(group_name)
        return row
    raise EC2Error("MissingParameter", "The request must contain the parameter groupName or groupId")


def in_use(db: Session, group: SecurityGroup) -> str | None:
    """Why `group` cannot go yet, or None."""
    for check in IN_USE_CHECKS:
        message = check(db, group)
        if message:
            return message
    return None
