"""The CLC's admin API, used by the `eucasim account|user|key|vmtype` commands.

Routes (internal, signed with the cloud secret):
  GET  /internal/admin/accounts                    -> AccountList
  POST /internal/admin/accounts        NewAccount  -> AccountCreated (with the admin user's key)
  POST /internal/admin/users           NewUser     -> UserView
  POST /internal/admin/keys            NewKey      -> AccessKeyInfo
  GET  /internal/admin/vmtypes                     -> VmTypeList
  PUT  /internal/admin/vmtypes/{name}  VmTypeSpec  -> VmTypeSpec
  GET  /internal/access-keys/{access_key}          -> AccessKeyInfo (404 when unknown)
"""

from __future__ import annotations

from pydantic import BaseModel, Field

ADMIN_ACCOUNTS_ROUTE = "/internal/admin/accounts"
ADMIN_USERS_ROUTE = "/internal/admin/users"
ADMIN_KEYS_ROUTE = "/internal/admin/keys"
ADMIN_VMTYPES_ROUTE = "/internal/admin/vmtypes"
ADMIN_VMTYPE_ROUTE = "/internal/admin/vmtypes/{name}"

from services.messages.identity import AccessKeyInfo


class NewAccount(BaseModel):
    name: str


class AccountView(BaseModel):
    id: str
    name: str
    users: list[str] = []


class AccountCreated(BaseModel):
    account: AccountView
    key: AccessKeyInfo


class AccountList(BaseModel):
    accounts: list[AccountView]


class NewUser(BaseModel):
    account: str
    name: str


class UserView(BaseModel):
    account: str
    account_id: str
    name: str


class NewKey(BaseModel):
    account: str
    user: str = "admin"


class VmTypeSpec(BaseModel):
    name: str
    cpu: int = Field(ge=1)
    memory_mb: int = Field(ge=1)
    disk_gb: int = Field(ge=1)


class VmTypeList(BaseModel):
    vm_types: list[VmTypeSpec]
