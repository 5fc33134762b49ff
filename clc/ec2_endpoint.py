"""The EC2 Query front door: authenticate, parse, dispatch to the action's handler, render.

Protocol lives here and in services/ (auth, ec2query); behaviour lives in the handlers under
clc/api/, which never see HTTP or XML."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from clc.accounts import key_info
from clc.api.registry import Context, accepted_params, eucalyptus_handler_for, handler_for
from clc.network_sync import NetworkSync
from clc.placement import Launches
from clc.storage_client import StorageClient
from clc.volume_settler import VolumeSettler
from clc.volume_work import VolumeWork
from clc.walrus_client import WalrusClient
from clc.zones_client import ZoneClient
from services.auth import RequestView, verify_ec2, view_from_asgi
from services.auth.keycache import KeyCache
from services.db import Database
from services.config import CloudConfig
from services.ec2query import eucalyptus, parse_request, render_error, render_result
from services.errors import AwsError, EC2Error
from services.metrics import ServiceMetrics
from services.messages.identity import AccessKeyInfo
from services.tracing import (REQUEST_ID_HEADER, TraceRecorder, bind_request_id, current_request_id,
                              new_request_id, unbind_request_id)

LOG = logging.getLogger(__name__)

# EC2 requests are small forms; a larger body is refused before it is parsed or buffered whole.
MAX_BODY_BYTES = 512 * 1024
EC2_PATHS = frozenset({"/", "/services/compute", "/services/compute/", "/services/Eucalyptus",
                       "/services/Eucalyptus/"})
EC2_METHODS = frozenset({"GET", "POST"})
XML = "text/xml;charset=UTF-8"
# How long a found access key is trusted without reading the database again.
KEY_CACHE_SECONDS = 10.0


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int) -> EC2Error:
    return EC2Error("RequestEntityTooLarge",
                    f"The request body is {size} bytes or more; the EC2 endpoint accepts at most "
                    f"{MAX_BODY_BYTES} bytes.", 413)


class Ec2Endpoint:
    def __init__(self, config: CloudConfig, db: Database, recorder: TraceRecorder,
                 zones: ZoneClient | None = None, launches: Launches | None = None,
                 network: NetworkSync | None = None,
                 walrus: WalrusClient | None = None, storage: StorageClient | None = None,
                 volumes: VolumeWork | None = None, settler: VolumeSettler | None = None,
                 metrics: ServiceMetrics | None = None) -> None:
        self._config = config
        self._metrics = metrics
        self._db = db
        self._recorder = recorder
        self._zones = zones
        self._launches = launches
        self._network = network
        self._walrus = walrus
        self._storage = storage
        self._volumes = volumes
        self._settler = settler
        # Every call looks its key up; a short cache spares the database most of those reads.
        self._keys: KeyCache[AccessKeyInfo] = KeyCache(self._lookup, ttl=KEY_CACHE_SECONDS)

    def _lookup(self, access_key: str) -> AccessKeyInfo | None:
        with self._db.session() as session:
            info = key_info(session, access_key)
        return info if info and info.active else None

    async def __call__(self, request: Request) -> Response:
        request_id = current_request_id() or new_request_id()
        started = time.perf_counter()
        # The action, once parsed (an unparsed one is not a label: clients choose its text).
        seen: list[str] = []
        try:
            response = await self._serve(request, request_id, seen)
            outcome = "ok"
        except AwsError as error:
            self._recorder.record("error", f"{error.code}: {error.message}", request_id=request_id)
            response = Response(render_error(error.code, error.message, request_id),
                                status_code=error.status, media_type=XML)
            outcome = error.code
        except Exception:  # a bug must still answer as EC2 would, and be logged
            LOG.exception("EC2 request %s failed", request_id)
            response = Response(render_error("InternalError", "An internal error has occurred.",
                                             request_id), status_code=500, media_type=XML)
            outcome = "InternalError"
        elapsed = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.observe(seen[0] if seen else "unparsed", outcome, elapsed)
        LOG.info("EC2 %s -> %s in %.1f ms", seen[0] if seen else "(unparsed)", outcome,
                 elapsed * 1000)
        return response

    async def _serve(self, request: Request, request_id: str, seen: list[str]) -> Response:
        body = await _read_body(request)
        view = view_from_asgi(request.scope, body)
        # One hop to the threadpool for everything that may block (the key look-up on a cache
        # miss, the handler's database work) or is plain CPU work (signature, parse, render).
        answer = await run_in_threadpool(self._handle, request.method,
                                         request.headers.get("content-type", ""), view, request_id,
                                         seen)
        return Response(answer, media_type=XML)

    def _handle(self, method: str, content_type: str, view: RequestView, request_id: str,
                seen: list[str]) -> bytes:
        pairs = parse_qsl(view.raw_query, keep_blank_values=True)
        if method == "POST" and "x-www-form-urlencoded" in content_type:
            pairs += parse_qsl(view.body.decode("utf-8", "replace"), keep_blank_values=True)
        found: dict[str, AccessKeyInfo | None] = {}

        def secret_of(access_key: str) -> str | None:
            info = found[access_key] = self._keys.get(access_key)
            return info.secret_key if info else None

        identity = verify_ec2(view, secret_of)
        # A verified signature means secret_of found this key active: no second look-up.
        caller = found[identity.access_key]
        assert caller is not None
        call = parse_request(pairs)
        seen.append(call.action)
        self._recorder.record("received", call.action, request_id=request_id,
                              account=caller.account_id, user=caller.user_name)
        if eucalyptus.speaks_eucalyptus(call.action, call.version, view.raw_path):
            return self._dispatch_eucalyptus(call.action, call.version, call.dry_run, pairs,
                                             caller, request_id)
        handler = handler_for(call.action)
        if handler is None:
            raise EC2Error("UnsupportedOperation",
                           f"The action {call.action} is not supported by this cloud yet.")
        if call.dry_run:
            raise EC2Error("DryRunOperation",
                           "Request would have succeeded, but DryRun flag is set.", 412)
        return self._dispatch(call.action, handler, call.params, caller, request_id)

    def _dispatch_eucalyptus(self, action: str, version: str, dry_run: bool,
                             pairs: list[tuple[str, str]], caller: AccessKeyInfo,
                             request_id: str) -> bytes:
        """Eucalyptus's own answer to `action`, in its namespace and release."""
        handler = eucalyptus_handler_for(action)
        if handler is None:
            raise EC2Error("UnsupportedOperation",
                           f"The Eucalyptus form of {action} is not supported by this cloud yet.")
        if dry_run:
            raise EC2Error("DryRunOperation",
                           "Request would have succeeded, but DryRun flag is set.", 412)
        params = eucalyptus.parse_params(action, pairs)
        with self._db.session() as session:
            ctx = self._context(session, caller, request_id)
            return eucalyptus.render(action, handler(ctx, **params) or {}, request_id,
                                     eucalyptus.answer_version(version))

    def _context(self, session: Session, caller: AccessKeyInfo, request_id: str) -> Context:
        return Context(db=session, account_id=caller.account_id, user_name=caller.user_name,
                       is_admin=caller.is_admin, request_id=request_id, config=self._config,
                       recorder=self._recorder, zones=self._zones,
                       launches=self._launches, walrus=self._walrus, network=self._network,
                       storage=self._storage, volumes=self._volumes, settler=self._settler)

    def _dispatch(self, action: str, handler: Callable[..., Any], params: dict[str, Any],
                  caller: AccessKeyInfo, request_id: str) -> bytes:
        taken, ignored = accepted_params(handler, params)
        if ignored:
            LOG.debug("%s ignores %s", handler.__name__, ignored)
        with self._db.session() as session:
            ctx = self._context(session, caller, request_id)
            # Rendered before the commit: a result that does not fit the output shape is a bug
            # that must not leave its change behind while the client sees an error.
            return render_result(action, handler(ctx, **taken), request_id)


class Ec2FrontDoor:
    """Pure ASGI, outermost: GET and POST on the EC2 paths go straight to the endpoint, skipping
    FastAPI's routing and its per-request http middleware (which cost more than a small EC2
    call itself); everything else (/internal/*, the metadata service) goes to the app. It does
    what that middleware does for these requests: bind the caller's request id (or a new one)
    and echo it in the response."""

    def __init__(self, app: ASGIApp, endpoint: Ec2Endpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in EC2_PATHS or scope["method"] not in EC2_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        token = bind_request_id(request_id)
        try:
            response = await self.endpoint(request)
        finally:
            unbind_request_id(token)
        response.headers[REQUEST_ID_HEADER] = request_id
        await response(scope, receive, send)
