"""Who may do what: the caller (`Principal`), S3 access control lists as stored grants, the
canned ACLs, x-amz-grant-* headers and the AccessControlPolicy document.

A grant is stored as {"type": "CanonicalUser"|"Group", "id": account id or group URI,
"name": display name, "permission": READ|WRITE|READ_ACP|WRITE_ACP|FULL_CONTROL}. The canonical
user id of an account is its 12-digit account id."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from services.errors import S3Error
from services.s3xml import XSI_NS, child_text, children, parse_xml

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PERMISSIONS = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")
CANNED = ("private", "public-read", "public-read-write", "authenticated-read",
          "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write",
          "aws-exec-read")
Grant = dict[str, str]


@dataclass(frozen=True)
class Principal:
    account_id: str | None
    account_name: str = ""
    access_key: str | None = None
    # The cloud's own `eucalyptus` administrators: the internal credentials of the SC and the
    # CLC, which must reach snapset-* and image buckets of any account.
    cloud_admin: bool = False
    # the IAM user of the access key, which a bucket policy may name
    user_name: str = ""

    @property
    def anonymous(self) -> bool:
        return self.account_id is None


ANONYMOUS = Principal(None, "anonymous")


def _user(account_id: str, name: str, permission: str) -> Grant:
    return {"type": "CanonicalUser", "id": account_id, "name": name, "permission": permission}


def _group(uri: str, permission: str) -> Grant:
    return {"type": "Group", "id": uri, "name": "", "permission": permission}


def canned(name: str, owner_id: str, owner_name: str,
           bucket_owner: tuple[str, str] | None = None) -> list[Grant]:
    if name not in CANNED:
        raise S3Error("InvalidArgument", f"Unknown canned ACL {name!r}.", ArgumentName="x-amz-acl",
                      ArgumentValue=name)
    grants = [_user(owner_id, owner_name, "FULL_CONTROL")]
    if name == "public-read":
        grants.append(_group(ALL_USERS, "READ"))
    elif name == "public-read-write":
        grants += [_group(ALL_USERS, "READ"), _group(ALL_USERS, "WRITE")]
    elif name in ("authenticated-read", "aws-exec-read"):
        grants.append(_group(AUTHENTICATED_USERS, "READ"))
    elif name in ("bucket-owner-read", "bucket-owner-full-control") and bucket_owner \
            and bucket_owner[0] != owner_id:
        permission = "READ" if name == "bucket-owner-read" else "FULL_CONTROL"
        grants.append(_user(bucket_owner[0], bucket_owner[1], permission))
    return grants


def owns(principal: Principal, owner_id: str) -> bool:
    """The owner (or a cloud administrator) may do anything, whatever the grants say."""
    return principal.cloud_admin or (principal.account_id is not None
                                     and principal.account_id == owner_id)


def allowed(principal: Principal, owner_id: str, grants: list[Grant], permission: str) -> bool:
    if owns(principal, owner_id):
        return True
    for grant in grants:
        if grant["permission"] not in (permission, "FULL_CONTROL"):
            continue
        if grant["type"] == "Group":
            if grant["id"] == ALL_USERS or (grant["id"] == AUTHENTICATED_USERS
                                             and not principal.anonymous):
                return True
        elif grant["id"] == principal.account_id:
            return True
    return False


def denied() -> S3Error:
    return S3Error("AccessDenied", "Access Denied", 403)


def require(principal: Principal, owner_id: str, grants: list[Grant], permission: str) -> None:
    if not allowed(principal, owner_id, grants, permission):
        raise denied()


def require_owner(principal: Principal, owner_id: str) -> None:
    """For what no grant can give (deleting a bucket, reading its location)."""
    if not owns(principal, owner_id):
        raise denied()


_GRANT_HEADERS = {"x-amz-grant-read": "READ", "x-amz-grant-write": "WRITE",
                  "x-amz-grant-read-acp": "READ_ACP", "x-amz-grant-write-acp": "WRITE_ACP",
                  "x-amz-grant-full-control": "FULL_CONTROL"}
_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]+)"?\s*')


def from_headers(headers: Mapping[str, str], owner_id: str, owner_name: str,
                 bucket_owner: tuple[str, str] | None = None) -> list[Grant] | None:
    """The ACL a request asks for in its headers; None when it names none."""
    canned_name = headers.get("x-amz-acl")
    explicit = {h: p for h, p in _GRANT_HEADERS.items() if h in headers}
    if canned_name and explicit:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    if canned_name:
        return canned(canned_name.strip(), owner_id, owner_name, bucket_owner)
    if not explicit:
        return None
    grants: list[Grant] = []
    for header, permission in explicit.items():
        for item in headers[header].split(","):
            match = _GRANTEE.fullmatch(item)
            if not match:
                raise S3Error("InvalidArgument", f"Bad grantee in {header}.")
            kind, value = match.groups()
            if kind == "uri":
                grants.append(_group(value, permission))
            elif kind == "id":
                grants.append(_user(value, "", permission))
            else:
                raise S3Error("NotImplemented", "Grants by e-mail address are not supported.", 501)
    return grants


def requested(headers: Mapping[str, str], owner_id: str, owner_name: str,
              bucket_owner: tuple[str, str] | None = None) -> list[Grant]:
    """The ACL a new bucket, object or upload gets: what its headers ask for, else private."""
    return (from_headers(headers, owner_id, owner_name, bucket_owner)
            or canned("private", owner_id, owner_name))


def from_document(body: bytes, owner_id: str) -> list[Grant]:
    root = parse_xml(body, "AccessControlPolicy")
    owner = children(root, "Owner")
    if owner and child_text(owner[0], "ID") not in (None, owner_id):
        raise S3Error("AccessDenied", "The owner of an ACL cannot be changed.", 403)
    grants: list[Grant] = []
    for acl in children(root, "AccessControlList"):
        for grant in children(acl, "Grant"):
            grants.append(_parse_grant(grant))
    return grants


def _parse_grant(grant: ET.Element) -> Grant:
    permission = child_text(grant, "Permission") or ""
    if permission not in PERMISSIONS:
        raise S3Error("MalformedACLError", "The XML you provided was not well-formed or did not "
                      "validate against our published schema.")
    grantee = children(grant, "Grantee")
    if not grantee:
        raise S3Error("MalformedACLError", "A Grant has no Grantee.")
    kind = grantee[0].get(f"{{{XSI_NS}}}type") or ""
    if kind == "Group" or child_text(grantee[0], "URI"):
        uri = child_text(grantee[0], "URI") or ""
        if uri not in (ALL_USERS, AUTHENTICATED_USERS):
            raise S3Error("InvalidArgument", f"Unknown group {uri!r}.")
        return _group(uri, permission)
    if kind == "AmazonCustomerByEmail":
        raise S3Error("NotImplemented", "Grants by e-mail address are not supported.", 501)
    user_id = child_text(grantee[0], "ID")
    if not user_id:
        raise S3Error("MalformedACLError", "A CanonicalUser grant has no ID.")
    return _user(user_id, child_text(grantee[0], "DisplayName") or "", permission)


def document(owner_id: str, owner_name: str, grants: list[Grant]) -> dict[str, Any]:
    """The result of GetBucketAcl and GetObjectAcl (botocore's member names)."""
    items = []
    for grant in grants:
        if grant["type"] == "Group":
            grantee: dict[str, Any] = {"Type": "Group", "URI": grant["id"]}
        else:
            grantee = {"Type": "CanonicalUser", "ID": grant["id"],
                       "DisplayName": grant.get("name") or None}
        items.append({"Grantee": grantee, "Permission": grant["permission"]})
    return {"Owner": {"ID": owner_id, "DisplayName": owner_name}, "Grants": items}
