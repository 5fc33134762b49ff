"""Put/Get/DeleteBucketLifecycleConfiguration. The rules are carried out by
walrus/lifecycle_runner.py on a schedule."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from services.errors import S3Error
from walrus import lifecycle
from walrus.context import S3Context, answer, empty
from walrus.models import Bucket
from walrus.offload import off_loop
from walrus.ops.bucket_settings import store_setting
from walrus.ops.buckets import load_bucket, load_bucket_async


def get_lifecycle(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    if not bucket.lifecycle:
        raise S3Error("NoSuchLifecycleConfiguration", "The lifecycle configuration does not "
                      "exist", 404, BucketName=bucket.name)
    return answer("GetBucketLifecycleConfiguration", lifecycle.document(bucket.lifecycle))


async def put_lifecycle(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    ctx.require_owner(bucket.owner_id)
    rules = lifecycle.from_document(await ctx.small_body())
    return await off_loop(_set_lifecycle, ctx, bucket, rules)


def delete_lifecycle(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    _set_lifecycle(ctx, bucket, None)
    return empty(204)


def _set_lifecycle(ctx: S3Context, bucket: Bucket, rules: list[dict[str, Any]] | None) -> Response:
    store_setting(ctx, bucket, "lifecycle", rules, f"set the lifecycle rules of bucket {bucket.name}")
    return empty(200)
