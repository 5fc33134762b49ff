"""An account's key pairs as rows: name rules, storing one (its public half only), finding and
deleting them. Generating and reading keys is clc/keys.py; the EC2 surface clc/api/keypairs.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clc import tagging
from clc.models.resources import KeyPair
from services.clock import utcnow
from services.errors import EC2Error
from services.ids import new_id

MAX_NAME_LENGTH = 255


def not_found(name: str) -> EC2Error:
    return EC2Error("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")


def id_not_found(key_pair_id: str) -> EC2Error:
    return EC2Error("InvalidKeyPair.NotFound", f"The key pair ID '{key_pair_id}' does not exist")


def duplicate(name: str) -> EC2Error:
    return EC2Error("InvalidKeyPair.Duplicate", f"The keypair '{name}' already exists.")


def check_name(name: str) -> None:
    if not name:
        raise EC2Error("MissingParameter", "The request must contain the parameter KeyName")
    if not name.isascii():
        raise EC2Error("InvalidParameterValue", f"Value ({name}) for parameter keyName is invalid. "
                       "Character sets beyond ASCII are not supported.")
    if len(name) > MAX_NAME_LENGTH:
        raise EC2Error("InvalidParameterValue", f"Value ({name}) for parameter keyName is invalid. "
                       f"Length exceeds maximum of {MAX_NAME_LENGTH}.")


def named(db: Session, account_id: str, name: str) -> KeyPair | None:
    return db.scalar(select(KeyPair).where(KeyPair.account_id == account_id, KeyPair.name == name))


def by_id(db: Session, account_id: str, key_pair_id: str) -> KeyPair | None:
    return db.scalar(select(KeyPair).where(KeyPair.account_id == account_id,
                                           KeyPair.id == key_pair_id))


def check_unique(db: Session, account_id: str, name: str) -> None:
    if named(db, account_id, name) is not None:
        raise duplicate(name)


def store(db: Session, account_id: str, name: str, key_type: str, public_openssh: str,
          fingerprint: str) -> KeyPair:
    row = KeyPair(id=new_id("key", 17), account_id=account_id, name=name, key_type=key_type,
                  fingerprint=fingerprint, public_key=public_openssh, created_at=utcnow())
    db.add(row)
    try:
        db.flush()
    except IntegrityError:  # the same name created by a concurrent request a moment ago
        raise duplicate(name) from None
    return row


def of_account(db: Session, account_id: str) -> list[KeyPair]:
    return list(db.scalars(select(KeyPair).where(KeyPair.account_id == account_id)
                           .order_by(KeyPair.name)))


def delete(db: Session, row: KeyPair) -> None:
    """Delete a key pair and forget its tags."""
    tagging.delete_all_tags(db, row.account_id, row.id)
    db.delete(row)
