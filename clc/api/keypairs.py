"""CreateKeyPair, ImportKeyPair, DescribeKeyPairs and DeleteKeyPair. Only the public half of a
key is kept; the private key EC2 generates is returned once, in the CreateKeyPair answer."""

from __future__ import annotations

from typing import Any

from clc import key_pairs, keys, tagging
from clc.api.query import apply_filters
from clc.api.registry import Context, action
from clc.models.resources import KeyPair
from services.errors import EC2Error

RESOURCE_TYPE = "key-pair"

tagging.register_resource("key", RESOURCE_TYPE, tagging.account_row_exists(KeyPair),
                          key_pairs.id_not_found)


def _store(ctx: Context, name: str, key_type: str, public_openssh: str, fingerprint: str,
           specs: list[dict[str, Any]] | None) -> tuple[KeyPair, list[dict[str, str]]]:
    row = key_pairs.store(ctx.db, ctx.account_id, name, key_type, public_openssh, fingerprint)
    tags = tagging.apply_tag_specifications(ctx.db, ctx.account_id, specs, RESOURCE_TYPE, row.id)
    return row, tags


@action("CreateKeyPair")
def create_key_pair(ctx: Context, KeyName: str, KeyType: str = "rsa", KeyFormat: str = "pem",
                    TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    key_pairs.check_name(KeyName)
    if KeyType not in keys.KEY_TYPES:
        raise EC2Error("InvalidParameterValue", f"Value ({KeyType}) for parameter keyType is "
                       "invalid. Valid values are: rsa, ed25519.")
    if KeyFormat not in keys.KEY_FORMATS:
        raise EC2Error("InvalidParameterValue", f"Value ({KeyFormat}) for parameter keyFormat is "
                       "invalid. Valid values are: pem, ppk.")
    key_pairs.check_unique(ctx.db, ctx.account_id, KeyName)
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
    key_pairs.check_name(KeyName)
    try:
        imported = keys.parse_public_key(PublicKeyMaterial)
    except keys.UnsupportedKeySize as exc:
        raise EC2Error("InvalidKey.Format",
                       f"Invalid key length {exc.bits}: RSA keys must be 1024, 2048, 3072 or "
                       "4096 bits long.") from None
    except keys.InvalidPublicKey:
        raise EC2Error("InvalidKey.Format", "Key is not in valid OpenSSH public key format") from None
    key_pairs.check_unique(ctx.db, ctx.account_id, KeyName)
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
    rows = key_pairs.of_account(ctx.db, ctx.account_id)
    by_name = {r.name: r for r in rows}
    by_id = {r.id: r for r in rows}
    for name in KeyNames or []:
        if name not in by_name:
            raise key_pairs.not_found(name)
    for key_pair_id in KeyPairIds or []:
        if key_pair_id not in by_id:
            raise key_pairs.id_not_found(key_pair_id)
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
    row = (key_pairs.by_id(ctx.db, ctx.account_id, KeyPairId) if KeyPairId
           else key_pairs.named(ctx.db, ctx.account_id, str(KeyName)))
    if row is None:
        # EC2 answers success for a key pair that is not there, so deleting is idempotent.
        return {"Return": True}
    key_pair_id = row.id
    key_pairs.delete(ctx.db, row)
    ctx.trace("decided", f"deleted key pair {key_pair_id} ({row.name})")
    return {"Return": True, "KeyPairId": key_pair_id}
