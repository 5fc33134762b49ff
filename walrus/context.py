"""Everything an S3 operation needs about one request, and the small helpers they share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from services.auth import Identity
from services.config import CloudConfig
from services.db import Database
from services.errors import S3Error
from services import s3xml
from services.tracing import TraceRecorder
from walrus import access, policy
from walrus.access import Principal
from walrus.blobs import BlobStore
from walrus.bucket_cache import BucketCache
from walrus.bodies import BodySpec, ReceivedBody, receive_body, receive_small
from walrus.group_commit import GroupCommitter
from walrus.models import Bucket
from walrus.routing import Target

XML_TYPE = "application/xml"
T = TypeVar("T")


@dataclass
class S3Context:
    request: Request
    target: Target
    principal: Principal
    identity: Identity | None
    headers: dict[str, str]
    db: Database
    buckets: BucketCache
    blobs: BlobStore
    config: CloudConfig
    recorder: TraceRecorder
    write_lock: threading.Lock
    commits: GroupCommitter[tuple[dict[str, Any], bool], list[list[Any]] | None]
    # The IAM action of the operation (s3:GetObject…), for bucket policies; "" for those a
    # policy does not decide as a whole (DeleteObjects decides key by key, preflight never).
    action: str = ""
    # The bucket's policy allowed this request: no ACL needs to (see `admit`).
    policy_allows: bool = False

    @property
    def bucket(self) -> str:
        assert self.target.bucket is not None
        return self.target.bucket

    @property
    def key(self) -> str:
        assert self.target.key is not None
        return self.target.key

    @property
    def query(self) -> dict[str, str]:
        return self.target.query

    def owner_pair(self) -> tuple[str, str]:
        if self.principal.account_id is None:
            raise S3Error("AccessDenied", "Anonymous users cannot own resources.", 403)
        return self.principal.account_id, self.principal.account_name

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction (in a worker thread). Walrus is its database's only writer, so
        its writes queue on one lock here: a waiter wakes the moment the lock is free, where
        SQLite's busy handler would poll in sleeps of milliseconds, and a read-then-write
        (deleting an object, then its body) sees no other write in between. PUTs go through
        the group committer (`commits`), which takes the same lock."""
        with self.write_lock, self.db.session() as db:
            yield db

    async def receive(self, then: Callable[[ReceivedBody], T],
                      compute: list[str] | None = None) -> T:
        """The request body, checked and committed as a new blob, handed to `then` in a
        worker thread (see walrus/bodies.py); returns what `then` returns."""
        return await receive_body(self.request.stream(), BodySpec.from_headers(self.headers, compute),
                                  self.blobs, then, identity=self.identity)

    async def small_body(self) -> bytes:
        """A small request document (XML), checked the same way and kept in memory."""
        return await receive_small(self.request.stream(), BodySpec.from_headers(self.headers),
                                   identity=self.identity)

    def decided(self, what: str, **detail: Any) -> None:
        self.recorder.record("decided", what, **detail)

    def require(self, owner_id: str, grants: list[access.Grant], permission: str) -> None:
        if not self.policy_allows:
            access.require(self.principal, owner_id, grants, permission)

    def require_owner(self, owner_id: str) -> None:
        """For what only an owner may do, unless the bucket policy grants it."""
        if not self.policy_allows:
            access.require_owner(self.principal, owner_id)

    def policy_context(self) -> dict[str, str]:
        """The condition keys of this request, named in lower case."""
        client = self.request.client
        context = {"aws:sourceip": client.host if client else "",
                   "aws:securetransport": "true" if self.request.url.scheme == "https" else "false"}
        if self.principal.account_id is not None:
            context["aws:principalaccount"] = self.principal.account_id
        for name, key in (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"),
                          ("max-keys", "s3:max-keys"), ("versionId", "s3:versionid")):
            if name in self.query:
                context[key] = self.query[name]
        for header in ("x-amz-acl", "x-amz-storage-class", "x-amz-copy-source",
                       "x-amz-metadata-directive"):
            if header in self.headers:
                context["s3:" + header] = self.headers[header]
        return context

    def policy_decision(self, bucket: Bucket, action: str, resource: str) -> str | None:
        if not bucket.policy:
            return None
        return policy.decide(policy.parsed(bucket.policy),
                             policy.Request(self.principal, action, resource, self.policy_context()))

    def may_list(self, bucket: Bucket) -> bool:
        """Whether the caller may list the bucket: S3 tells it a key is missing (404) only
        then, and otherwise answers 403, so that keys cannot be guessed."""
        decision = self.policy_decision(bucket, "s3:ListBucket", policy.bucket_arn(bucket.name))
        if decision is not None:
            return decision == policy.ALLOW
        return access.allowed(self.principal, bucket.owner_id, bucket.acl, "READ")

    def admit(self, bucket: Bucket) -> None:
        """What every request on a bucket passes first: x-amz-expected-bucket-owner, then the
        bucket's policy: a Deny refuses the request (whoever asks: the owner too, except for
        managing the policy itself, so that an owner can never lock itself out); an Allow lets
        it through whatever the ACLs say."""
        expected = self.headers.get("x-amz-expected-bucket-owner")
        if expected is not None and expected != bucket.owner_id:
            raise access.denied()
        self.policy_allows = False
        if not self.action or not bucket.policy:
            return
        resource = (policy.object_arn(bucket.name, self.target.key) if self.target.key is not None
                    else policy.bucket_arn(bucket.name))
        decision = self.policy_decision(bucket, self.action, resource)
        if decision == policy.DENY:
            if self.action in policy.POLICY_ACTIONS and access.owns(self.principal, bucket.owner_id):
                return
            self.decided(f"bucket policy of {bucket.name} denies {self.action}")
            raise access.denied()
        self.policy_allows = decision == policy.ALLOW


def no_such_bucket(name: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=name)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def no_such_version(key: str, version_id: str) -> S3Error:
    return S3Error("NoSuchVersion", "The specified version does not exist.", 404, Key=key,
                   VersionId=version_id)


def answer(operation: str, result: dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """The answer of an S3 operation from its result, keyed by botocore's member names (see
    services/s3xml/writer.py); `headers` adds those the model does not describe."""
    written = s3xml.render(operation, result)
    if headers:
        written.headers.update(headers)
    media_type = XML_TYPE if written.body.startswith(b"<?xml") else None
    return Response(written.body, status_code=written.status or status, media_type=media_type,
                    headers=written.headers)


def empty(status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=headers)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'
