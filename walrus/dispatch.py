"""Which S3 operation a request is: by method, by level (service, bucket, object) and by the
sub-resource named in the query, as the S3 REST API documents it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response

from services.errors import S3Error
from walrus.context import S3Context
from walrus.ops import (acls, attributes, buckets, cors, lifecycle, listing, multipart, objects,
                        policy, reads, tagging, versioning)
from walrus.routing import Target

Handler = Callable[[S3Context], Response | Awaitable[Response]]

# Sub-resources S3 has and Walrus does not implement: answered 501, never mistaken for a
# plain GET/PUT of the bucket or object.
UNSUPPORTED = {"logging", "notification", "accelerate", "requestPayment",
               "retention", "legal-hold", "torrent", "restore", "select",
               "analytics", "metrics", "inventory", "intelligent-tiering", *buckets.ABSENT}


# Sub-resources Walrus implements for objects only: a bucket's are not kept.
BUCKET_UNSUPPORTED = ("tagging",)


def _refuse_unsupported(method: str, query: Mapping[str, str], *also: str) -> None:
    name = next((name for name in query if name in UNSUPPORTED or name in also), None)
    if name is not None:
        raise S3Error("NotImplemented", f"{method} ?{name} is not implemented by Walrus.", 501)


def _method_not_allowed(method: str, resource_type: str) -> S3Error:
    return S3Error("MethodNotAllowed", "The specified method is not allowed against this "
                   "resource.", 405, Method=method, ResourceType=resource_type)


def _bucket_level(method: str, q: Mapping[str, str]) -> Handler:
    if method == "GET":
        if "acl" in q:
            return acls.get_bucket_acl
        if "location" in q:
            return buckets.get_location
        if "uploads" in q:
            return multipart.list_uploads
        if "versioning" in q:
            return versioning.get_versioning
        if "versions" in q:
            return versioning.list_object_versions
        if "cors" in q:
            return cors.get_bucket_cors
        if "policy" in q:
            return policy.get_bucket_policy
        if "policyStatus" in q:
            return policy.get_bucket_policy_status
        if "lifecycle" in q:
            return lifecycle.get_lifecycle
        for name in buckets.ABSENT:
            if name in q:
                return buckets.absent_subresource(name)
        _refuse_unsupported(method, q)
        return listing.list_objects
    if method == "HEAD":
        return buckets.head_bucket
    if method == "PUT":
        if "acl" in q:
            return acls.put_bucket_acl
        if "versioning" in q:
            return versioning.put_versioning
        if "cors" in q:
            return cors.put_bucket_cors
        if "policy" in q:
            return policy.put_bucket_policy
        if "lifecycle" in q:
            return lifecycle.put_lifecycle
        _refuse_unsupported(method, q, *BUCKET_UNSUPPORTED)
        return buckets.create_bucket
    if method == "DELETE":
        if "cors" in q:
            return cors.delete_bucket_cors
        if "policy" in q:
            return policy.delete_bucket_policy
        if "lifecycle" in q:
            return lifecycle.delete_lifecycle
        _refuse_unsupported(method, q, *BUCKET_UNSUPPORTED)
        return buckets.delete_bucket
    if method == "POST" and "delete" in q:
        return objects.delete_objects
    if method == "OPTIONS":
        return cors.preflight
    raise _method_not_allowed(method, "BUCKET")


def _object_level(method: str, q: Mapping[str, str], headers: Mapping[str, str]) -> Handler:
    copying = "x-amz-copy-source" in headers
    if method == "GET":
        if "acl" in q:
            return acls.get_object_acl
        if "uploadId" in q:
            return multipart.list_parts
        if "tagging" in q:
            return tagging.get_object_tagging
        if "attributes" in q:
            return attributes.get_object_attributes
        _refuse_unsupported(method, q)
        return reads.get_object
    if method == "HEAD":
        return reads.head_object
    if method == "PUT":
        if "acl" in q:
            return acls.put_object_acl
        if "uploadId" in q or "partNumber" in q:
            return multipart.upload_part_copy if copying else multipart.upload_part
        if "tagging" in q:
            return tagging.put_object_tagging
        _refuse_unsupported(method, q)
        return objects.copy_object if copying else objects.put_object
    if method == "DELETE":
        if "uploadId" in q:
            return multipart.abort_upload
        if "tagging" in q:
            return tagging.delete_object_tagging
        _refuse_unsupported(method, q)
        return objects.delete_object
    if method == "POST":
        if "uploads" in q:
            return multipart.create_upload
        if "uploadId" in q:
            return multipart.complete_upload
    if method == "OPTIONS":
        return cors.preflight
    raise _method_not_allowed(method, "OBJECT")


def choose(method: str, target: Target, headers: Mapping[str, str]) -> Handler:
    if target.bucket is None:
        if method == "GET":
            return buckets.list_buckets
        raise _method_not_allowed(method, "SERVICE")
    if target.key is None:
        return _bucket_level(method, target.query)
    return _object_level(method, target.query, headers)


# The IAM action of each operation, as bucket policies name them; (current, by versionId).
_ACTIONS: dict[Handler, tuple[str, str]] = {
    buckets.list_buckets: ("s3:ListAllMyBuckets",) * 2,
    buckets.create_bucket: ("s3:CreateBucket",) * 2,
    buckets.head_bucket: ("s3:ListBucket",) * 2,
    buckets.delete_bucket: ("s3:DeleteBucket",) * 2,
    buckets.get_location: ("s3:GetBucketLocation",) * 2,
    listing.list_objects: ("s3:ListBucket",) * 2,
    versioning.list_object_versions: ("s3:ListBucketVersions",) * 2,
    versioning.get_versioning: ("s3:GetBucketVersioning",) * 2,
    versioning.put_versioning: ("s3:PutBucketVersioning",) * 2,
    multipart.list_uploads: ("s3:ListBucketMultipartUploads",) * 2,
    acls.get_bucket_acl: ("s3:GetBucketAcl",) * 2,
    acls.put_bucket_acl: ("s3:PutBucketAcl",) * 2,
    cors.get_bucket_cors: ("s3:GetBucketCORS",) * 2,
    cors.put_bucket_cors: ("s3:PutBucketCORS",) * 2,
    cors.delete_bucket_cors: ("s3:PutBucketCORS",) * 2,
    policy.get_bucket_policy: ("s3:GetBucketPolicy",) * 2,
    policy.put_bucket_policy: ("s3:PutBucketPolicy",) * 2,
    policy.delete_bucket_policy: ("s3:DeleteBucketPolicy",) * 2,
    policy.get_bucket_policy_status: ("s3:GetBucketPolicyStatus",) * 2,
    reads.get_object: ("s3:GetObject", "s3:GetObjectVersion"),
    reads.head_object: ("s3:GetObject", "s3:GetObjectVersion"),
    objects.put_object: ("s3:PutObject",) * 2,
    objects.copy_object: ("s3:PutObject",) * 2,
    objects.delete_object: ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    acls.get_object_acl: ("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    acls.put_object_acl: ("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    tagging.get_object_tagging: ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    tagging.put_object_tagging: ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    tagging.delete_object_tagging: ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    multipart.create_upload: ("s3:PutObject",) * 2,
    multipart.upload_part: ("s3:PutObject",) * 2,
    multipart.upload_part_copy: ("s3:PutObject",) * 2,
    multipart.complete_upload: ("s3:PutObject",) * 2,
    multipart.abort_upload: ("s3:AbortMultipartUpload",) * 2,
    multipart.list_parts: ("s3:ListMultipartUploadParts",) * 2,
    lifecycle.get_lifecycle: ("s3:GetLifecycleConfiguration",) * 2,
    attributes.get_object_attributes: ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    lifecycle.put_lifecycle: ("s3:PutLifecycleConfiguration",) * 2,
    lifecycle.delete_lifecycle: ("s3:PutLifecycleConfiguration",) * 2,
}


def action(handler: Handler, target: Target) -> str:
    """The IAM action a bucket policy sees for this request ("" where the policy is applied
    otherwise: DeleteObjects decides key by key, a preflight is not an S3 action)."""
    named = getattr(handler, "s3_action", None)
    if isinstance(named, str):
        return named
    pair = _ACTIONS.get(handler)
    if pair is None:
        return ""
    return pair[1] if "versionId" in target.query else pair[0]


# The botocore operations each handler answers (a preflight is none). Their answers are
# compiled from botocore's model at start (services/s3xml), and tests/walrus/test_wire.py
# round-trips every one of them through botocore's parser.
OPERATIONS: dict[Handler, tuple[str, ...]] = {
    buckets.list_buckets: ("ListBuckets",),
    buckets.create_bucket: ("CreateBucket",),
    buckets.head_bucket: ("HeadBucket",),
    buckets.delete_bucket: ("DeleteBucket",),
    buckets.get_location: ("GetBucketLocation",),
    listing.list_objects: ("ListObjects", "ListObjectsV2"),
    versioning.list_object_versions: ("ListObjectVersions",),
    versioning.get_versioning: ("GetBucketVersioning",),
    versioning.put_versioning: ("PutBucketVersioning",),
    multipart.list_uploads: ("ListMultipartUploads",),
    acls.get_bucket_acl: ("GetBucketAcl",),
    acls.put_bucket_acl: ("PutBucketAcl",),
    cors.get_bucket_cors: ("GetBucketCors",),
    cors.put_bucket_cors: ("PutBucketCors",),
    cors.delete_bucket_cors: ("DeleteBucketCors",),
    policy.get_bucket_policy: ("GetBucketPolicy",),
    policy.put_bucket_policy: ("PutBucketPolicy",),
    policy.delete_bucket_policy: ("DeleteBucketPolicy",),
    policy.get_bucket_policy_status: ("GetBucketPolicyStatus",),
    reads.get_object: ("GetObject",),
    reads.head_object: ("HeadObject",),
    objects.put_object: ("PutObject",),
    objects.copy_object: ("CopyObject",),
    objects.delete_object: ("DeleteObject",),
    objects.delete_objects: ("DeleteObjects",),
    acls.get_object_acl: ("GetObjectAcl",),
    acls.put_object_acl: ("PutObjectAcl",),
    tagging.get_object_tagging: ("GetObjectTagging",),
    tagging.put_object_tagging: ("PutObjectTagging",),
    tagging.delete_object_tagging: ("DeleteObjectTagging",),
    multipart.create_upload: ("CreateMultipartUpload",),
    multipart.upload_part: ("UploadPart",),
    multipart.upload_part_copy: ("UploadPartCopy",),
    multipart.complete_upload: ("CompleteMultipartUpload",),
    multipart.abort_upload: ("AbortMultipartUpload",),
    multipart.list_parts: ("ListParts",),
    lifecycle.get_lifecycle: ("GetBucketLifecycleConfiguration",),
    lifecycle.put_lifecycle: ("PutBucketLifecycleConfiguration",),
    lifecycle.delete_lifecycle: ("DeleteBucketLifecycle",),
    attributes.get_object_attributes: ("GetObjectAttributes",),
}


def operation_names() -> list[str]:
    return sorted({name for names in OPERATIONS.values() for name in names})
