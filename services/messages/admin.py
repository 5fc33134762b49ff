"""The CLC's admin API, used by the `eucasim account|user|key|vmtype` commands.

Routes (internal, signed with the cloud secret):
  GET  /internal/admin/accounts                    -> AccountList
  POST /internal/admin/accounts        NewAccount  -> AccountCreated (with the admin user's key)
  POST /internal/admin/users           NewUser     -> UserView
  POST /internal/admin/keys            NewKey      -> AccessKeyInfo
  GET  /internal/admin/vmtypes                     -> VmTypeList
  PUT  /internal/admin/vmtypes/{name}  VmTypeSpec  -> VmTypeSpec
  GET  /internal/access-keys/{access_key}          -> AccessKeyInfo (404 when unknown)
  GET  /internal/admin/services                    -> ServiceList (every service's state)

Every service answers GET /internal/health (unsigned) with a ServiceHealth, and GET
/internal/routes (signed) with a RouteList: every route it serves, so a test can try each
internal one without a hand-kept list.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ADMIN_ACCOUNTS_ROUTE = "/internal/admin/accounts"
ADMIN_USERS_ROUTE = "/internal/admin/users"
ADMIN_KEYS_ROUTE = "/internal/admin/keys"
ADMIN_VMTYPES_ROUTE = "/internal/admin/vmtypes"
ADMIN_VMTYPE_ROUTE = "/internal/admin/vmtypes/{name}"
ADMIN_SERVICES_ROUTE = "/internal/admin/services"
HEALTH_ROUTE = "/internal/health"
ROUTES_ROUTE = "/internal/routes"

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


# Eucalyptus's service states, as euca-describe-services printed them: ENABLED serves;
# NOTREADY runs but cannot serve yet (or lacks what it needs); BROKEN does not answer or
# fails; DISABLED is not in service (here: not part of this cloud).
ServiceState = Literal["ENABLED", "NOTREADY", "BROKEN", "DISABLED"]


class ServiceHealth(BaseModel):
    """A service's own word on itself (its /internal/health)."""
    service: str
    status: str = "ok"
    state: ServiceState = "ENABLED"
    reason: str = ""


class ServiceStatus(BaseModel):
    type: str          # eucalyptus (the CLC), walrus, cluster, storage, node
    name: str
    zone: str          # the partition: the region for the CLC and Walrus, else the zone
    host: str
    url: str
    state: ServiceState
    reason: str = ""


class ServiceList(BaseModel):
    services: list[ServiceStatus]


class RouteInfo(BaseModel):
    method: str
    path: str          # the template, as declared: /internal/volumes/{volume_id}
    internal: bool     # a path under /internal/ (or a node's /{node}/internal/): signed callers only


class RouteList(BaseModel):
    service: str
    routes: list[RouteInfo]
