"""Get/PutBucketAcl and Get/PutObjectAcl."""

from __future__ import annotations

from starlette.responses import Response

from services.errors import S3Error
from walrus import access, catalog, versions
from walrus.context import S3Context, answer, empty, no_such_key, no_such_version
from walrus.models import Bucket
from walrus.versions import Version
from walrus.offload import off_loop
from walrus.ops.buckets import load_bucket, load_bucket_async


def get_bucket_acl(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "READ_ACP")
    return answer("GetBucketAcl", access.document(bucket.owner_id, bucket.owner_name, bucket.acl))


async def _new_grants(ctx: S3Context, owner_id: str, owner_name: str,
                      bucket_owner: tuple[str, str] | None) -> list[access.Grant]:
    body = await ctx.small_body()
    grants = access.from_headers(ctx.headers, owner_id, owner_name, bucket_owner)
    if grants is not None and body.strip():
        raise S3Error("UnexpectedContent", "This request does not support content")
    if grants is None:
        if not body.strip():
            raise S3Error("MissingSecurityHeader", "Your request was missing a required header",
                          MissingHeaderName="x-amz-acl")
        grants = access.from_document(body, owner_id)
    return grants


async def put_bucket_acl(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "WRITE_ACP")
    grants = await _new_grants(ctx, bucket.owner_id, bucket.owner_name, None)
    return await off_loop(_set_bucket_acl, ctx, bucket, grants)


def _set_bucket_acl(ctx: S3Context, bucket: Bucket, grants: list[access.Grant]) -> Response:
    with ctx.writing() as db:
        row = catalog.get_bucket(db, bucket.name)
        if row is not None:
            row.acl = grants
    ctx.buckets.forget(bucket.name)
    ctx.decided(f"set the ACL of bucket {bucket.name}", grants=len(grants))
    return empty(200)


def get_object_acl(ctx: S3Context) -> Response:
    obj = _acl_target(ctx, "READ_ACP")
    return answer("GetObjectAcl", access.document(obj.owner_id, obj.owner_name, obj.acl))


def _acl_target(ctx: S3Context, permission: str) -> Version:
    bucket = load_bucket(ctx)
    version_id = ctx.query.get("versionId")
    with ctx.db.session() as db:
        obj: Version | None = (catalog.get_object(db, bucket.name, ctx.key) if version_id is None
                               else versions.find(db, bucket.name, ctx.key, version_id))
    if obj is None:
        raise no_such_key(ctx.key) if version_id is None else no_such_version(ctx.key, version_id)
    if obj.delete_marker:
        # A delete marker has no ACL: S3 answers as for a key that is not there.
        raise no_such_key(ctx.key)
    ctx.require(obj.owner_id, obj.acl, permission)
    return obj


async def put_object_acl(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    obj = await off_loop(_acl_target, ctx, "WRITE_ACP")
    grants = await _new_grants(ctx, obj.owner_id, obj.owner_name,
                               (bucket.owner_id, bucket.owner_name))
    return await off_loop(_set_object_acl, ctx, obj, grants)


def _set_object_acl(ctx: S3Context, obj: Version, grants: list[access.Grant]) -> Response:
    with ctx.writing() as db:
        versions.update(db, obj.bucket, obj.key, obj.version_id, acl=grants)
    ctx.decided(f"set the ACL of {obj.bucket}/{obj.key}", grants=len(grants))
    return empty(200)
