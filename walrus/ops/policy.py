"""Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. Evaluation is walrus/policy.py,
applied to every request by `S3Context.admit` when its bucket is loaded."""

from __future__ import annotations

from starlette.responses import Response

from services.errors import S3Error
from walrus import access, policy
from walrus.context import S3Context, answer, empty
from walrus.models import Bucket
from walrus.offload import off_loop
from walrus.ops.bucket_settings import store_setting
from walrus.ops.buckets import load_bucket, load_bucket_async


def _owner_only(ctx: S3Context, bucket: Bucket) -> None:
    # Only the owner's account manages the policy, whatever the policy grants (as in S3).
    access.require_owner(ctx.principal, bucket.owner_id)


def _no_policy(bucket: Bucket) -> S3Error:
    return S3Error("NoSuchBucketPolicy", "The bucket policy does not exist", 404,
                   BucketName=bucket.name)


def get_bucket_policy(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    _owner_only(ctx, bucket)
    if not bucket.policy:
        raise _no_policy(bucket)
    return answer("GetBucketPolicy", {"Policy": bucket.policy}, headers={
        "Content-Type": "application/json"})


async def put_bucket_policy(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    _owner_only(ctx, bucket)
    body = await ctx.small_body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise policy.malformed("Policies must be valid JSON and the first byte must be '{'") \
            from None
    policy.parse(text, bucket.name)
    return await off_loop(_set_policy, ctx, bucket, text)


def delete_bucket_policy(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    _owner_only(ctx, bucket)
    _set_policy(ctx, bucket, None)
    return empty(204)


def _set_policy(ctx: S3Context, bucket: Bucket, text: str | None) -> Response:
    store_setting(ctx, bucket, "policy", text, f"{'set' if text else 'removed'} the policy of bucket {bucket.name}")
    return empty(204)


def get_bucket_policy_status(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    if not bucket.policy:
        raise _no_policy(bucket)
    public = policy.is_public(policy.parsed(bucket.policy))
    return answer("GetBucketPolicyStatus", {"PolicyStatus": {"IsPublic": public}})
