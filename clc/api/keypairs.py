"""CreateKeyPair, ImportKeyPair, DescribeKeyPairs and DeleteKeyPair. Only the public half of a
key is kept; the private key EC2 generates is returned once, in the CreateKeyPair answer."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clc import keys, tagging
from clc.api.query import apply_filters
from clc.api.registry import Context, action
from clc.models.resources import KeyPair
from services.errors import EC2Error

RESOURCE_TYPE = "key-pair"
MAX_NAME_LENGTH = 255


def _not_found(name: str) -> EC2Error:
    return EC2Error("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")


def _id_not_found(key_pair_id: str) -> EC2Error:
    return EC2Error("InvalidKeyPair.NotFound", f"The key pair ID '{key_pair_id}' does not exist")


tagging.register_resource("key", RESOURCE_TYPE, tagging.account_row_exists(KeyPair), _id_not_found)


def _check_name(name: str) -> None:
    if not name:
        raise EC2Error("MissingParameter", "The request must contain the parameter KeyName")
    if not name.isascii():
        raise EC2Error("InvalidParameterValue", f"Value ({name}) for parameter keyName is invalid. "
                       "Character sets beyond ASCII are not supported.")
    if len(name) > MAX_NAME_LENGTH:
        raise EC2Error("InvalidParameterValue", f"Value ({name}) for parameter keyName is invalid. "
                       f"Length exceeds maximum of {MAX_NAME_LENGTH}.")


def _check_unique(ctx: Context, name: str) -> None:
    if ctx.db.scalar(select(KeyPair.id).where(KeyPair.account_id == ctx.account_id,
                                              KeyPair.name == name)) is not None:
        raise EC2Error("InvalidKeyPair.Duplicate", f"The keypair '{name}' already exists.")


def _store(ctx: Context, name: str, key_type: str, public_openssh: str, fingerprint: str,
           specs: list[dict[str, Any]] | None) -> tuple[KeyPair, list[dict[str, str]]]:
    row = KeyPair(id=ctx.new_id("key", 17), account_id=ctx.account_id, name=name,
                  key_type=key_type, fingerprint=fingerprint, public_key=public_openssh,
                  created_at=datetime.now(timezone.utc))
    ctx.db.add(row)
    try:
        ctx.db.flush()
    except IntegrityError:  # the same name created by a concurrent request a moment ago
        raise EC2Error("InvalidKeyPair.Duplicate", f"The keypair '{name}' already exists.") from None
    tags = tagging.apply_tag_specifications(ctx.db, ctx.account_id, specs, RESOURCE_TYPE, row.id)
    return row, tags


@action("CreateKeyPair")
def create_key_pair(ctx: Context, KeyName: str, KeyType: str = "rsa", KeyFormat: str = "pem",
                    TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    _check_name(KeyName)
    if KeyType not in keys.KEY_TYPES:
        raise EC2Error("InvalidParameterValue", f"Value ({KeyType}) for parameter keyType is "
                       "invalid. Valid values are: rsa, ed25519.")
    if KeyFormat not in keys.KEY_FORMATS:
        raise EC2Error("InvalidParameterValue", f"Value ({KeyFormat}) for parameter keyFormat is "
                       "invalid. Valid values are: pem, ppk.")
    _check_unique(ctx, KeyName)
    pair = keys.generate(KeyType, KeyFormat, comment=KeyName)
    row, tags = _store(ctx, KeyName, KeyType, pair.public_openssh, pair.fingerprint,
                       TagSpecifications)
    ctx.trace("decided", f"created {KeyType} key pair {row.id} ({KeyName})",
              fingerprint=pair.fingerprint)
    result: dict[str, Any] = {"KeyName": KeyName, "KeyFingerprint": pair.fingerprint,
                              "KeyMaterial": pair.private_material, "KeyPairId": row.id}
    if tags:
        result["Tags"] = tags
    return result


@action("ImportKeyPair")
def import_key_pair(ctx: Context, KeyName: str, PublicKeyMaterial: bytes,
                    TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    _check_name(KeyName)
    try:
        imported = keys.parse_public_key(PublicKeyMaterial)
    except keys.UnsupportedKeySize as exc:
        raise EC2Error("InvalidKey.Format",
                       f"Invalid key length {exc.bits}: RSA keys must be 1024, 2048, 3072 or "
                       "4096 bits long.") from None
    except keys.InvalidPublicKey:
        raise EC2Error("InvalidKey.Format", "Key is not in valid OpenSSH public key format") from None
    _check_unique(ctx, KeyName)
    row, tags = _store(ctx, KeyName, imported.key_type, imported.public_openssh,
                       imported.fingerprint, TagSpecifications)
    ctx.trace("decided", f"imported {imported.key_type} key pair {row.id} ({KeyName})")
    result: dict[str, Any] = {"KeyName": KeyName, "KeyFingerprint": imported.fingerprint,
                              "KeyPairId": row.id}
    if tags:
        result["Tags"] = tags
    return result


@action("DescribeKeyPairs")
def describe_key_pairs(ctx: Context, KeyNames: list[str] | None = None,
                       KeyPairIds: list[str] | None = None,
                       Filters: list[dict[str, Any]] | None = None,
                       IncludePublicKey: bool = False) -> dict:
    rows = list(ctx.db.scalars(select(KeyPair).where(KeyPair.account_id == ctx.account_id)
                               .order_by(KeyPair.name)))
    by_name = {r.name: r for r in rows}
    by_id = {r.id: r for r in rows}
    for name in KeyNames or []:
        if name not in by_name:
            raise _not_found(name)
    for key_pair_id in KeyPairIds or []:
        if key_pair_id not in by_id:
            raise _id_not_found(key_pair_id)
    if KeyNames:
        rows = [r for r in rows if r.name in KeyNames]
    if KeyPairIds:
        rows = [r for r in rows if r.id in KeyPairIds]
    tags = tagging.tags_by_resource(ctx.db, ctx.account_id, RESOURCE_TYPE)
    rows = apply_filters(rows, Filters, {
        "key-pair-id": lambda r: r.id, "key-name": lambda r: r.name,
        "fingerprint": lambda r: r.fingerprint, "key-type": lambda r: r.key_type,
    }, tags_of=lambda r: tags.get(r.id, {}))
    pairs = []
    for row in rows:
        # CreateTime may come back naive from SQLite; the EC2 writer reads naive times as UTC.
        info: dict[str, Any] = {"KeyPairId": row.id, "KeyName": row.name,
                                "KeyFingerprint": row.fingerprint, "KeyType": row.key_type,
                                "Tags": tagging.tag_list(tags.get(row.id, {})),
                                "CreateTime": row.created_at}
        if IncludePublicKey:
            # EC2 gives the OpenSSH line with the key's name as its comment.
            info["PublicKey"] = f"{row.public_key} {row.name}"
        pairs.append(info)
    return {"KeyPairs": pairs}


@action("DeleteKeyPair")
def delete_key_pair(ctx: Context, KeyName: str | None = None, KeyPairId: str | None = None) -> dict:
    if not KeyName and not KeyPairId:
        raise EC2Error("MissingParameter",
                       "The request must contain the parameter KeyName or KeyPairId")
    query = select(KeyPair).where(KeyPair.account_id == ctx.account_id)
    query = query.where(KeyPair.id == KeyPairId) if KeyPairId else query.where(KeyPair.name == KeyName)
    row = ctx.db.scalar(query)
    if row is None:
        # EC2 answers success for a key pair that is not there, so deleting is idempotent.
        return {"Return": True}
    key_pair_id = row.id
    tagging.delete_all_tags(ctx.db, ctx.account_id, key_pair_id)
    ctx.db.delete(row)
    ctx.trace("decided", f"deleted key pair {key_pair_id} ({row.name})")
    return {"Return": True, "KeyPairId": key_pair_id}
