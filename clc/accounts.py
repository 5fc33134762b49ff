"""Accounts, users and access keys: creating them, looking them up, and the `eucalyptus`
admin account every cloud starts with."""

from __future__ import annotations

import secrets
import string

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clc.models.accounts import AccessKey, Account, User
from clc.models.resources import SecurityGroup
from services.ids import new_id
from services.messages.identity import AccessKeyInfo

ADMIN_ACCOUNT = "eucalyptus"
ADMIN_USER = "admin"


class AccountConflict(Exception):
    pass


class AccountNotFound(Exception):
    pass


def _new_account_id(db: Session) -> str:
    while True:
        candidate = "".join(secrets.choice(string.digits) for _ in range(12))
        if candidate[0] != "0" and db.get(Account, candidate) is None:
            return candidate


def _new_access_key() -> tuple[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    access = "AKI" + "".join(secrets.choice(alphabet) for _ in range(17))
    secret = secrets.token_urlsafe(30)[:40]
    return access, secret


def create_account(db: Session, name: str) -> Account:
    if not name or len(name) > 63 or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError("an account name is 1-63 letters, digits, '-', '_' or '.'")
    if db.scalar(select(Account).where(Account.name == name)):
        raise AccountConflict(f"account '{name}' already exists")
    account = Account(id=_new_account_id(db), name=name)
    db.add(account)
    db.add(User(account_id=account.id, name=ADMIN_USER, is_admin=True))
    # Every account has a `default` security group, as every EC2-Classic account did.
    db.add(SecurityGroup(id=new_id("sg", 17), account_id=account.id, name="default",
                         description="default group"))
    try:
        db.flush()
    except IntegrityError as exc:
        raise AccountConflict(f"account '{name}' already exists") from exc
    return account


def account_by_name(db: Session, name: str) -> Account:
    account = db.scalar(select(Account).where(Account.name == name))
    if account is None:
        raise AccountNotFound(f"no account named '{name}'")
    return account


def accounts_with_users(db: Session) -> list[tuple[Account, list[str]]]:
    """Every account, by name, with the names of its users."""
    users: dict[str, list[str]] = {}
    for account_id, name in db.execute(select(User.account_id, User.name).order_by(User.name)):
        users.setdefault(account_id, []).append(name)
    return [(a, users.get(a.id, [])) for a in db.scalars(select(Account).order_by(Account.name))]


def account_id_named(db: Session, name: str) -> str | None:
    return db.scalar(select(Account.id).where(Account.name == name))


def account_exists(db: Session, account_id: str) -> bool:
    return db.get(Account, account_id) is not None


def create_user(db: Session, account_name: str, user_name: str) -> User:
    account = account_by_name(db, account_name)
    if db.scalar(select(User).where(User.account_id == account.id, User.name == user_name)):
        raise AccountConflict(f"user '{user_name}' already exists in account '{account_name}'")
    user = User(account_id=account.id, name=user_name, is_admin=False)
    db.add(user)
    db.flush()
    return user


def create_access_key(db: Session, account_name: str, user_name: str = ADMIN_USER) -> AccessKey:
    account = account_by_name(db, account_name)
    user = db.scalar(select(User).where(User.account_id == account.id, User.name == user_name))
    if user is None:
        raise AccountNotFound(f"no user '{user_name}' in account '{account_name}'")
    access, secret = _new_access_key()
    key = AccessKey(access_key=access, secret_key=secret, user_id=user.id)
    db.add(key)
    db.flush()
    return key


def key_info(db: Session, access_key: str) -> AccessKeyInfo | None:
    row = db.execute(
        select(AccessKey, User, Account)
        .join(User, AccessKey.user_id == User.id)
        .join(Account, User.account_id == Account.id)
        .where(AccessKey.access_key == access_key)
    ).first()
    if row is None:
        return None
    key, user, account = row
    return AccessKeyInfo(access_key=key.access_key, secret_key=key.secret_key,
                         account_id=account.id, account_name=account.name, user_name=user.name,
                         is_admin=user.is_admin and account.name == ADMIN_ACCOUNT,
                         active=key.active)


def ensure_admin(db: Session) -> AccessKeyInfo:
    """The `eucalyptus` account and its first access key, created on the first start."""
    account = db.scalar(select(Account).where(Account.name == ADMIN_ACCOUNT))
    if account is None:
        create_account(db, ADMIN_ACCOUNT)
        key = create_access_key(db, ADMIN_ACCOUNT)
    else:
        key = db.scalar(
            select(AccessKey).join(User, AccessKey.user_id == User.id)
            .where(User.account_id == account.id, User.name == ADMIN_USER, AccessKey.active)
            .order_by(AccessKey.created_at))
        if key is None:
            key = create_access_key(db, ADMIN_ACCOUNT)
    info = key_info(db, key.access_key)
    assert info is not None
    return info
