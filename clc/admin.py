"""Admin routes: accounts, users, access keys and VM types, for the `eucasim` command line and
for the other services that need to know who an access key belongs to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, HTTPException

from clc import accounts, vm_types
from services.db import Database
from services.identity import ACCESS_KEY_ROUTE
from services.internal import InternalAuth
from services.messages.admin import (ADMIN_ACCOUNTS_ROUTE, ADMIN_KEYS_ROUTE, ADMIN_USERS_ROUTE,
                                     ADMIN_VMTYPE_ROUTE, ADMIN_VMTYPES_ROUTE, AccountCreated,
                                     AccountList, AccountView, NewAccount, NewKey, NewUser,
                                     UserView, VmTypeList, VmTypeSpec)
from services.messages.identity import AccessKeyInfo


@contextmanager
def _as_http_errors() -> Iterator[None]:
    """The accounts module's refusals as the HTTP answers the CLI reports."""
    try:
        yield
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    except accounts.AccountNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except accounts.AccountConflict as exc:
        raise HTTPException(409, str(exc)) from None


def admin_router(db: Database, auth: InternalAuth) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])

    @router.get(ACCESS_KEY_ROUTE)
    def access_key(access_key: str) -> AccessKeyInfo:
        with db.session() as session:
            info = accounts.key_info(session, access_key)
        if info is None:
            raise HTTPException(404, f"no access key {access_key}")
        return info

    @router.get(ADMIN_ACCOUNTS_ROUTE)
    def list_accounts() -> AccountList:
        with db.session() as session:
            views = [AccountView(id=a.id, name=a.name, users=users)
                     for a, users in accounts.accounts_with_users(session)]
        return AccountList(accounts=views)

    @router.post(ADMIN_ACCOUNTS_ROUTE, status_code=201)
    def create_account(body: NewAccount) -> AccountCreated:
        with db.session() as session:
            with _as_http_errors():
                account = accounts.create_account(session, body.name)
            key = accounts.create_access_key(session, body.name)
            info = accounts.key_info(session, key.access_key)
            assert info is not None
            view = AccountView(id=account.id, name=account.name, users=[accounts.ADMIN_USER])
        return AccountCreated(account=view, key=info)

    @router.post(ADMIN_USERS_ROUTE, status_code=201)
    def create_user(body: NewUser) -> UserView:
        with db.session() as session:
            with _as_http_errors():
                user = accounts.create_user(session, body.account, body.name)
            return UserView(account=body.account, account_id=user.account_id, name=user.name)

    @router.post(ADMIN_KEYS_ROUTE, status_code=201)
    def create_key(body: NewKey) -> AccessKeyInfo:
        with db.session() as session:
            with _as_http_errors():
                key = accounts.create_access_key(session, body.account, body.user)
            info = accounts.key_info(session, key.access_key)
        assert info is not None
        return info

    @router.get(ADMIN_VMTYPES_ROUTE)
    def list_vm_types() -> VmTypeList:
        with db.session() as session:
            return VmTypeList(vm_types=[VmTypeSpec(name=r.name, cpu=r.cpu, memory_mb=r.memory_mb,
                                                   disk_gb=r.disk_gb)
                                        for r in vm_types.by_size(session)])

    @router.put(ADMIN_VMTYPE_ROUTE)
    def set_vm_type(name: str, body: VmTypeSpec) -> VmTypeSpec:
        if body.name != name:
            raise HTTPException(400, "the VM type's name in the path and body differ")
        with db.session() as session:
            vm_types.put(session, name, body.cpu, body.memory_mb, body.disk_gb)
        return body

    return router
