"""Bucket operations: create, head, delete, list buckets, location, and the sub-resources
Walrus does not keep (answered as S3 answers a bucket that has none configured)."""

from __future__ import annotations

from collections.abc import Callable
from starlette.responses import Response

from services import clock
from services.errors import S3Error
from services.s3xml import child_text, parse_xml
from walrus import access, catalog
from walrus.context import S3Context, answer, no_such_bucket
from walrus.models import Bucket
from walrus.offload import off_loop
from walrus.routing import validate_bucket_name


US_EAST_1 = "us-east-1"


def load_bucket(ctx: S3Context) -> Bucket:
    """The request's bucket, its policy applied to the request (every operation on a bucket
    or its objects loads it first, so no operation escapes the policy)."""
    bucket = ctx.buckets.get(ctx.bucket)
    if bucket is None:
        raise no_such_bucket(ctx.bucket)
    ctx.admit(bucket)
    return bucket


async def load_bucket_async(ctx: S3Context) -> Bucket:
    """`load_bucket` for a handler on the event loop: from memory, else from a worker thread."""
    bucket = ctx.buckets.cached(ctx.bucket)
    if bucket is None:
        return await off_loop(load_bucket, ctx)
    ctx.admit(bucket)
    return bucket


async def create_bucket(ctx: S3Context) -> Response:
    owner_id, owner_name = ctx.owner_pair()
    validate_bucket_name(ctx.bucket)
    body = await ctx.small_body()
    region = ctx.config.REGION
    if body.strip():
        constraint = child_text(parse_xml(body, "CreateBucketConfiguration"), "LocationConstraint")
        if constraint:
            region = constraint
    grants = access.requested(ctx.headers, owner_id, owner_name)
    return await off_loop(_create_bucket, ctx, owner_id, owner_name, region, grants)


def _create_bucket(ctx: S3Context, owner_id: str, owner_name: str, region: str,
                   grants: list[access.Grant]) -> Response:
    with ctx.writing() as db:
        existing = catalog.get_bucket(db, ctx.bucket)
        if existing is not None:
            if existing.owner_id == owner_id and existing.region == region == US_EAST_1:
                # us-east-1's old rule: creating a bucket one owns there again succeeds, and
                # changes nothing
                return answer("CreateBucket", {"Location": f"/{ctx.bucket}"})
            if existing.owner_id == owner_id:
                raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the "
                              "named bucket succeeded and you already own it.", 409,
                              BucketName=ctx.bucket)
            raise S3Error("BucketAlreadyExists", "The requested bucket name is not available. "
                          "The bucket namespace is shared by all users of the system. Please "
                          "select a different name and try again.", 409, BucketName=ctx.bucket)
        db.add(Bucket(name=ctx.bucket, owner_id=owner_id, owner_name=owner_name, region=region,
                      created=clock.utcnow(), acl=grants))
    ctx.buckets.forget(ctx.bucket)
    ctx.decided(f"created bucket {ctx.bucket} for account {owner_id}", region=region)
    return answer("CreateBucket", {"Location": f"/{ctx.bucket}"})


def head_bucket(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "READ")
    return answer("HeadBucket", {"BucketRegion": bucket.region})


def delete_bucket(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    with ctx.writing() as db:
        if not catalog.bucket_is_empty(db, ctx.bucket):
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409,
                          BucketName=ctx.bucket)
        # Unfinished multipart uploads go with the bucket, as their parts are not objects.
        leftovers = catalog.blobs_of_uploads(db, ctx.bucket)
        catalog.delete_bucket(db, ctx.bucket)
    ctx.buckets.forget(ctx.bucket)
    ctx.blobs.delete(leftovers)
    ctx.decided(f"deleted bucket {ctx.bucket}")
    return answer("DeleteBucket", {}, 204)


def list_buckets(ctx: S3Context) -> Response:
    owner_id, owner_name = ctx.owner_pair()
    with ctx.db.session() as db:
        buckets = catalog.buckets_of(db, owner_id)
    return answer("ListBuckets", {
        "Owner": {"ID": owner_id, "DisplayName": owner_name},
        "Buckets": [{"Name": b.name, "CreationDate": b.created} for b in buckets],
    })


def get_location(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    # us-east-1 is written as an empty constraint, as AWS does.
    region = "" if bucket.region == "us-east-1" else bucket.region
    return answer("GetBucketLocation", {"LocationConstraint": region})


# Sub-resources a bucket never has here: AWS's answer for a bucket without one.
ABSENT = {
    "tagging": ("NoSuchTagSet", "The TagSet does not exist"),
    "website": ("NoSuchWebsiteConfiguration", "The specified bucket does not have a website "
                "configuration"),
    "encryption": ("ServerSideEncryptionConfigurationNotFoundError", "The server side encryption "
                   "configuration was not found"),
    "replication": ("ReplicationConfigurationNotFoundError", "The replication configuration was "
                    "not found"),
    "object-lock": ("ObjectLockConfigurationNotFoundError", "Object Lock configuration does not "
                    "exist for this bucket"),
    "publicAccessBlock": ("NoSuchPublicAccessBlockConfiguration", "The public access block "
                          "configuration was not found"),
    "ownershipControls": ("OwnershipControlsNotFoundError", "The bucket ownership controls were "
                          "not found"),
}


def absent_subresource(name: str) -> Callable[[S3Context], Response]:
    def handler(ctx: S3Context) -> Response:
        bucket = load_bucket(ctx)
        ctx.require(bucket.owner_id, bucket.acl, "READ")
        code, message = ABSENT[name]
        raise S3Error(code, message, 404, BucketName=ctx.bucket)
    handler.s3_action = ABSENT_ACTIONS.get(name, "")  # type: ignore[attr-defined]
    return handler


ABSENT_ACTIONS = {"tagging": "s3:GetBucketTagging", "lifecycle": "s3:GetLifecycleConfiguration",
                  "website": "s3:GetBucketWebsite", "encryption": "s3:GetEncryptionConfiguration",
                  "replication": "s3:GetReplicationConfiguration",
                  "object-lock": "s3:GetBucketObjectLockConfiguration",
                  "publicAccessBlock": "s3:GetBucketPublicAccessBlock",
                  "ownershipControls": "s3:GetBucketOwnershipControls"}
