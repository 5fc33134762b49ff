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
from services.s3xml import to_xml
from services.tracing import TraceRecorder
from walrus import access
from walrus.access import Principal
from walrus.blobs import BlobStore
from walrus.bucket_cache import BucketCache
from walrus.bodies import BodySpec, ReceivedBody, receive_body, receive_small
from walrus.group_commit import GroupCommitter
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
        access.require(self.principal, owner_id, grants, permission)


def no_such_bucket(name: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=name)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def no_such_version(key: str, version_id: str) -> S3Error:
    return S3Error("NoSuchVersion", "The specified version does not exist.", 404, Key=key,
                   VersionId=version_id)


def xml_response(root: str, body: dict[str, Any], status: int = 200,
                 headers: dict[str, str] | None = None) -> Response:
    return Response(to_xml(root, body), status_code=status, media_type=XML_TYPE, headers=headers)


def empty(status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=headers)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'
