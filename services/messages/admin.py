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
  GET    /internal/admin/zone-services             -> ZoneServiceList (registered CCs and SCs)
  POST   /internal/admin/zone-services  ZoneServiceSpec -> ZoneServiceView (400 a bad spec or
         nothing of that type answering there, 409 a name taken or a zone that has one already)
  DELETE /internal/admin/zone-services/{type}/{name} -> ZoneServiceView (404 when unknown)
  GET  /internal/admin/properties                  -> PropertyList
  GET  /internal/admin/properties/{name}           -> PropertyView (404 when unknown)
  PUT  /internal/admin/properties/{name} NewValue  -> PropertyView (400 a bad value, 404 an
       unknown name, 409 a change that would take what is in use, 503 a CC that did not take it)

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
ADMIN_PROPERTIES_ROUTE = "/internal/admin/properties"
ADMIN_PROPERTY_ROUTE = "/internal/admin/properties/{name}"
ADMIN_ZONE_SERVICES_ROUTE = "/internal/admin/zone-services"
ADMIN_ZONE_SERVICE_ROUTE = "/internal/admin/zone-services/{type}/{name}"
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


class PropertyView(BaseModel):
    """One cloud property, as euca-describe-properties listed it."""
    name: str
    value: str
    description: str
    default: str        # what eucalyptus.conf (or the built-in default) gives it
    stored: bool        # set with `eucasim property set`, kept in the CLC's database


class PropertyList(BaseModel):
    properties: list[PropertyView]


class NewValue(BaseModel):
    value: str


# Eucalyptus's component types for a zone's services (euca-register-cluster, -storage-controller).
ZoneServiceType = Literal["cluster", "storage"]


class ZoneServiceSpec(BaseModel):
    """A zone's CC or SC on a host of its own (`eucasim register-cluster|register-sc`)."""
    type: ZoneServiceType
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    zone: str
    host: str           # host:port


class ZoneServiceView(BaseModel):
    type: ZoneServiceType
    name: str
    zone: str
    host: str
    port: int
    url: str


class ZoneServiceList(BaseModel):
    services: list[ZoneServiceView]


class RouteInfo(BaseModel):
    method: str
    path: str          # the template, as declared: /internal/volumes/{volume_id}
    internal: bool     # a path under /internal/ (or a node's /{node}/internal/): signed callers only


class RouteList(BaseModel):
    service: str
    routes: list[RouteInfo]
