"""Walrus, the S3-compatible object store: `create_app` builds the FastAPI service.

Every S3 request goes through one route: routing (path or virtual host) -> signature ->
operation (walrus/dispatch.py) -> response, with errors as S3's `<Error>` document.

One rule: no blocking work on the event loop. The loop is shared by every connection, so
anything that can wait (SQLite, which may wait for its write lock or a checkpoint; file
opens, reads, writes, renames and fsyncs, or with WALRUS_BACKEND=s3 every request to the S3
cluster that holds the bodies; a call to the CLC for an access key) or that costs
CPU in proportion to a body (decoding aws-chunked framing, MD5 and the x-amz-checksum-*
family) would hold up every other request while it runs: one large upload, one slow disk or
one long transaction would stall a 1 KiB GET beside it. What the loop does is constant work
per request: parse the target, check the signature against keys in memory, move body bytes
between the socket and memory, send the answer. Concretely:

- An operation without a request body is a plain function, run whole in a worker thread
  (`Walrus.handle` -> walrus/offload.py). One hop per request: measured, that costs less
  than any split of its SQLite read and file read would.
- An operation with a body is a coroutine: it receives the body on the loop (awaiting the
  socket, so a slow client costs nothing but memory), hands each megabyte to a worker thread
  to decode, hash and write (walrus/bodies.py), and finishes (fsync, rename, its row) in one
  more hop. It does not hold a worker thread while the client is slow to send, so a few
  slow clients cannot use up the pool.
- Large GET bodies stream from the blob store (walrus/blobs.py) chunk by chunk, each read in a
  worker thread (walrus/streaming.py); a slow reader only parks the response's send on the
  loop. Bodies up to 256 KiB are read at once in the handler.
- PUT rows are committed in groups by one committer thread (walrus/group_commit.py): with
  many clients, each statement's GIL hand-off, not the row, was what a PUT waited for.

The test is tests/walrus/test_event_loop.py: a half-sent PUT, a half-read GET and a PUT
waiting on a locked database each leave a small GET beside them answered.

Durability: a PUT is answered only once its blob is fsynced and renamed into an fsynced folder
(or, on S3, the cluster has answered its PUT or multipart completion) and its row is in a WAL
commit fsynced by SQLite (synchronous=FULL here: the group commit makes that one fsync per
group, not per object)."""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI
from sqlalchemy import event
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services import clock
from services.config import KEEP_ALIVE_SECONDS, CloudConfig, load_config
from services.db import Database
from services.errors import AwsError, InternalError, S3Error
from services.identity import ClcKeyDirectory, KeyDirectory, StaticKeyDirectory
from services.internal import InternalClient
from services.messages.identity import AccessKeyInfo
from services import s3xml
from services.s3xml import error_xml
from services.metrics import ServiceMetrics
from services.service_app import make_service_app
from services.tls import ensure_tls
from services.tracing import (REQUEST_ID_HEADER, TraceRecorder, bind_request_id,
                              current_request_id, new_request_id, unbind_request_id)
from walrus import catalog, cors, dispatch, orphans
from walrus.authn import authenticate, request_headers, request_view
from walrus.blobs import open_blob_store
from walrus.bucket_cache import BucketCache
from walrus.bundles import images_router
from walrus.context import S3Context
from walrus.gauges import walrus_gauges
from walrus.group_commit import GroupCommitter
from walrus.lifecycle_runner import LifecycleRunner, LifecycleScheduler, lifecycle_router
from walrus.offload import THREADS, off_loop
from walrus.routing import Target, parse_target

log = logging.getLogger("walrus")
# How often lifecycle rules are carried out: S3 acts on them about once a day, with a delay.
LIFECYCLE_INTERVAL = 3600.0
MAX_HEADER_SECTION = 8192
REQUEST_ID_BYTES = REQUEST_ID_HEADER.encode("latin-1")


def base_hosts(config: CloudConfig) -> set[str]:
    """Host names that address Walrus itself; `<bucket>.<one of these>` is a virtual host."""
    hosts = {"localhost", config.PUBLIC_HOST, config.BIND_ADDRESS}
    if config.WALRUS_URL:
        hosts.add(urlparse(config.WALRUS_URL).hostname or "")
    return {h for h in hosts if h}


class Walrus:
    """The state one Walrus process serves from."""

    def __init__(self, config: CloudConfig, keys: KeyDirectory, recorder: TraceRecorder,
                 metrics: ServiceMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.keys = keys
        self.recorder = recorder
        self.db = Database(config.database_url("walrus"), pool_size=THREADS)
        # An answered PUT is durable: every commit fsyncs the WAL (the committer groups PUTs,
        # so one fsync serves many), as every blob is fsynced before its row is written.
        event.listen(self.db.engine, "connect", _synchronous_full)
        self.db.upgrade(Path(__file__).parent / "migrations")
        self.blobs = open_blob_store(config)
        with self.db.session() as db:  # before serving: no write is in flight
            orphans.sweep(db, self.blobs)
        self.buckets = BucketCache(self.db)
        self.hosts = base_hosts(config)
        self.write_lock = threading.Lock()
        self.commits = GroupCommitter(self.db, self.write_lock, catalog.replace_objects)
        self.lifecycle_runner = LifecycleRunner(self.db, self.blobs, self.write_lock, self.buckets)
        self.lifecycle = LifecycleScheduler(self.lifecycle_runner, clock.utcnow,
                                            LIFECYCLE_INTERVAL)
        # A static directory answers from memory; any other may call the CLC, so off the loop.
        self._keys_local = isinstance(keys, StaticKeyDirectory)
        # Answers' writers are compiled from botocore's model now, not in a first request.
        s3xml.preload(dispatch.operation_names())

    async def handle(self, request: Request, headers: dict[str, str]) -> Response:
        """`headers`: the request's, names in lower case, a repeated one's values joined by
        "," (see request_headers)."""
        started = time.perf_counter()
        target: Target | None = None
        operation, outcome = "unparsed", "ok"  # for the metrics: the handler's name
        try:
            scope = request.scope
            _check_header_section(scope)
            target = parse_target(scope.get("raw_path") or scope["path"].encode(),
                                  scope.get("query_string", b""), headers.get("host", ""),
                                  self.hosts)
            view = request_view(request, headers, target.virtual_host_bucket)
            if self._keys_local:
                principal, identity = authenticate(view, self.keys)
            else:
                principal, identity = await off_loop(authenticate, view, self.keys)
            self.recorder.record("received", f"{request.method} {target.resource}",
                                 account=principal.account_id or "anonymous")
            handler = dispatch.choose(request.method, target, request.headers)
            operation = handler.__name__
            ctx = S3Context(request=request, target=target, principal=principal,
                            identity=identity, headers=dict(view.headers), db=self.db,
                            buckets=self.buckets, blobs=self.blobs, config=self.config,
                            recorder=self.recorder, write_lock=self.write_lock,
                            commits=self.commits, action=dispatch.action(handler, target))
            if inspect.iscoroutinefunction(handler):
                # Takes a request body: receives it here, moves its own blocking parts off.
                response = await handler(ctx)
            else:
                response = await off_loop(handler, ctx)
        except AwsError as error:
            response = self.error(request, headers, error, target)
            outcome = error.code
        except Exception:
            log.exception("unexpected failure serving %s %s", request.method, request.url.path)
            response = self.error(request, headers, InternalError(), target)
            outcome = "InternalError"
        if target is not None and target.bucket and "origin" in headers \
                and request.method != "OPTIONS":
            response.headers.update(await self.cors_headers(target.bucket, request))
        # Appended as raw pairs: no answer sets these before, and each MutableHeaders
        # assignment scans every header already there.
        request_id = (current_request_id() or "").encode("latin-1")
        response.raw_headers += [(b"x-amz-request-id", request_id), (b"x-amz-id-2", request_id),
                                 (REQUEST_ID_BYTES, request_id)]
        elapsed = time.perf_counter() - started
        self.recorder.record("replied", f"{request.method} -> {response.status_code}",
                             elapsed_ms=round(elapsed * 1000, 3))
        if self.metrics is not None:
            self.metrics.observe(operation, outcome, elapsed)
        log.info("S3 %s -> %s in %.1f ms", operation, outcome, elapsed * 1000)
        return response

    async def cors_headers(self, bucket_name: str, request: Request) -> dict[str, str]:
        """Access-Control-* headers for a request from a browser (one with an Origin): those
        the bucket's CORS rules allow, on success and error answers alike, as S3 sends them."""
        bucket = self.buckets.cached(bucket_name)
        if bucket is None:
            try:
                bucket = await off_loop(self.buckets.get, bucket_name)
            except Exception:  # the answer is already decided; its CORS headers are extra
                log.exception("reading bucket %s for its CORS rules", bucket_name)
                return {}
        if bucket is None:
            return {}
        return cors.actual(bucket.cors, request.headers["origin"], request.method)

    def error(self, request: Request, headers: dict[str, str], error: AwsError,
              target: Target | None) -> Response:
        resource = target.resource if target is not None else request.url.path
        self.recorder.record("error", f"{error.code}: {error.message}", status=error.status)
        # HEAD answers carry no body; clients read the status alone.
        body = b"" if request.method == "HEAD" else error_xml(error, resource,
                                                              current_request_id() or "")
        response = Response(body, status_code=error.status, media_type="application/xml",
                            headers=error.headers)
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            # The body may be unread (a client waiting on 100-continue never sends it): close
            # the connection rather than read its leftovers as the next request.
            response.headers["Connection"] = "close"
        return response


def _check_header_section(scope: Scope) -> None:
    """S3 takes at most 8 KB of request headers (names, values and their separators); the
    HTTP server takes far more, so the limit is kept here, before anything reads them."""
    size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size > MAX_HEADER_SECTION:
        raise S3Error("RequestHeaderSectionTooLarge", "Your request header section exceeds the "
                      "maximum allowed size.", MaxSizeAllowed=str(MAX_HEADER_SECTION))


def _synchronous_full(dbapi_connection: Any, _record: Any) -> None:
    if "sqlite" in type(dbapi_connection).__module__:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


def default_keys(config: CloudConfig) -> KeyDirectory:
    """The CLC's directory; a fixed list when WALRUS_ACCESS_KEYS names a JSON file."""
    if config.WALRUS_ACCESS_KEYS:
        entries = json.loads(Path(config.WALRUS_ACCESS_KEYS).read_text())
        return StaticKeyDirectory([AccessKeyInfo.model_validate(e) for e in entries])
    return ClcKeyDirectory(InternalClient(config.service_url("clc"), config.CLOUD_SECRET))


def server_options(config: CloudConfig) -> dict[str, object]:
    """uvicorn settings for Walrus (the launcher and `python -m walrus` use them)."""
    options: dict[str, object] = {"host": config.BIND_ADDRESS, "port": config.WALRUS_PORT,
                                  "log_level": "warning", "timeout_keep_alive": KEEP_ALIVE_SECONDS}
    if config.PUBLIC_HTTPS:
        files = ensure_tls(config)
        options.update(ssl_certfile=str(files.certfile), ssl_keyfile=str(files.keyfile))
    return options


def create_app(config: CloudConfig | None = None, keys: KeyDirectory | None = None) -> FastAPI:
    config = config or load_config()
    # Before everything FastAPI does per request (its telemetry check, Starlette's dispatch,
    # the middleware stack: error pages, body limits, the http middleware): S3 requests skip
    # all of it, which costs more than a small GET itself; /internal/* and the lifespan go
    # through it as before (WalrusApp).
    app, recorder = make_service_app("walrus", config.CLOUD_SECRET, config.LOG_LEVEL,
                                     app_class=WalrusApp)
    assert isinstance(app, WalrusApp)
    if keys is None:
        keys = default_keys(config)
    walrus = Walrus(config, keys, recorder, app.state.metrics)
    walrus_gauges(app.state.metrics, walrus.db)
    app.state.walrus = walrus
    # Image bundles -> images for the nodes (walrus/bundles.py), an internal API.
    app.include_router(images_router(walrus, app.state.internal_auth))
    # Lifecycle passes on demand, at a moment the caller names (tests drive the clock so).
    app.include_router(lifecycle_router(walrus.lifecycle, walrus.lifecycle_runner,
                                        app.state.internal_auth))
    walrus.lifecycle.start()
    app.s3_front_door = S3FrontDoor(walrus)
    return app


class WalrusApp(FastAPI):
    """Walrus's FastAPI app: every HTTP request outside /internal/ is an S3 request, served by
    the front door before FastAPI sees it."""

    s3_front_door: S3FrontDoor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/internal/"):
            scope["app"] = self
            await self.s3_front_door(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class S3FrontDoor:
    """Pure ASGI, for S3 requests only (WalrusApp sends them here)."""

    def __init__(self, walrus: Walrus) -> None:
        self.walrus = walrus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        token = bind_request_id(headers.get(REQUEST_ID_HEADER) or new_request_id())
        try:
            response = await self.walrus.handle(Request(scope, receive), headers)
        finally:
            unbind_request_id(token)
        await response(scope, receive, send)
