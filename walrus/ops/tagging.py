"""Object tagging: Put/Get/DeleteObjectTagging, of the current version or of one by versionId.
Tags given with PUT, CreateMultipartUpload and CopyObject are taken in those operations."""

from __future__ import annotations

from starlette.responses import Response

from walrus import access, tagging, versions
from walrus.context import S3Context, answer, no_such_key
from walrus.models import Bucket
from walrus.offload import off_loop
from walrus.ops.buckets import load_bucket, load_bucket_async
from walrus.ops.objects import shown_version
from walrus.ops.reads import load_object
from walrus.versions import Version


def _target(ctx: S3Context, bucket: Bucket) -> Version:
    """The version whose tags are asked for. Tags are the owner's to read and change (the
    object's or the bucket's): no ACL grant gives them, as in S3."""
    obj = load_object(ctx, bucket)
    if not (ctx.policy_allows or access.owns(ctx.principal, obj.owner_id)
            or access.owns(ctx.principal, bucket.owner_id)):
        raise access.denied()
    return obj


def get_object_tagging(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    obj = _target(ctx, bucket)
    return answer("GetObjectTagging", {**tagging.document(obj.tags or []),
                                       "VersionId": shown_version(bucket, obj.version_id)})


async def put_object_tagging(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    tags = tagging.from_document(await ctx.small_body())
    version_id = await off_loop(_set_tags, ctx, bucket, tags)
    return answer("PutObjectTagging", {"VersionId": shown_version(bucket, version_id)})


def delete_object_tagging(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    version_id = _set_tags(ctx, bucket, [])
    return answer("DeleteObjectTagging", {"VersionId": shown_version(bucket, version_id)}, 204)


def _set_tags(ctx: S3Context, bucket: Bucket, tags: tagging.TagSet) -> str:
    obj = _target(ctx, bucket)
    with ctx.writing() as db:
        found = versions.update(db, bucket.name, ctx.key, obj.version_id, tags=tags)
    if not found:  # deleted between the look-up and the write
        raise no_such_key(ctx.key)
    ctx.decided(f"tagged {bucket.name}/{ctx.key}", version=obj.version_id, tags=len(tags))
    return obj.version_id
