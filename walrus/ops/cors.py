"""Put/Get/DeleteBucketCors and the browser's preflight (OPTIONS on a bucket or object). The
Access-Control-* headers of actual requests are added by the front door (walrus/app.py)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from services.errors import S3Error
from walrus import cors
from walrus.context import S3Context, answer, empty
from walrus.models import Bucket
from walrus.offload import off_loop
from walrus.ops.bucket_settings import store_setting
from walrus.ops.buckets import load_bucket, load_bucket_async


def get_bucket_cors(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    if not bucket.cors:
        raise S3Error("NoSuchCORSConfiguration", "The CORS configuration does not exist", 404,
                      BucketName=bucket.name)
    return answer("GetBucketCors", cors.document(bucket.cors))


async def put_bucket_cors(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    ctx.require_owner(bucket.owner_id)
    rules = cors.from_document(await ctx.small_body())
    return await off_loop(_set_cors, ctx, bucket, rules)


def delete_bucket_cors(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    _set_cors(ctx, bucket, None)
    return empty(204)


def _set_cors(ctx: S3Context, bucket: Bucket, rules: list[dict[str, Any]] | None) -> Response:
    store_setting(ctx, bucket, "cors", rules, f"set the CORS rules of bucket {bucket.name}")
    return empty(200)


def preflight(ctx: S3Context) -> Response:
    """OPTIONS: answered from the bucket's rules alone; a preflight carries no credentials."""
    bucket = load_bucket(ctx)
    return empty(200, cors.preflight(bucket.cors, ctx.headers))
