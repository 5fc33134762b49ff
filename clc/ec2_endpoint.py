"""The EC2 Query front door: authenticate, parse, dispatch to the action's handler, render.

Protocol lives here and in services/ (auth, ec2query); behaviour lives in the handlers under
clc/api/, which never see HTTP or XML."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from clc.accounts import key_info
from clc.api.registry import Context, accepted_params, handler_for
from clc.network_sync import NetworkSync
from clc.placement import Launches
from clc.walrus_client import WalrusClient
from clc.zones_client import ZoneClient
from services.auth import verify_ec2, view_from_asgi
from services.db import Database
from services.config import CloudConfig
from services.ec2query import parse_request, render_error, render_result
from services.errors import AwsError, EC2Error
from services.messages.identity import AccessKeyInfo
from services.tracing import TraceRecorder, current_request_id, new_request_id

LOG = logging.getLogger(__name__)

# EC2 requests are small forms; a larger body is refused before it is parsed or buffered whole.
MAX_BODY_BYTES = 512 * 1024
EC2_PATHS = ("/", "/services/compute", "/services/compute/", "/services/Eucalyptus",
             "/services/Eucalyptus/")
XML = "text/xml;charset=UTF-8"


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
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
                 walrus: WalrusClient | None = None) -> None:
        self._config = config
        self._db = db
        self._recorder = recorder
        self._zones = zones
        self._launches = launches
        self._network = network
        self._walrus = walrus

    def _lookup(self, access_key: str) -> AccessKeyInfo | None:
        with self._db.session() as session:
            info = key_info(session, access_key)
        return info if info and info.active else None

    async def __call__(self, request: Request) -> Response:
        request_id = current_request_id() or new_request_id()
        try:
            return await self._serve(request, request_id)
        except AwsError as error:
            self._recorder.record("error", f"{error.code}: {error.message}", request_id=request_id)
            return Response(render_error(error.code, error.message, request_id),
                            status_code=error.status, media_type=XML)
        except Exception:  # a bug must still answer as EC2 would, and be logged
            LOG.exception("EC2 request %s failed", request_id)
            return Response(render_error("InternalError", "An internal error has occurred.",
                                         request_id), status_code=500, media_type=XML)

    async def _serve(self, request: Request, request_id: str) -> Response:
        body = await _read_body(request)
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(raw_query, keep_blank_values=True)
        if request.method == "POST" and "x-www-form-urlencoded" in request.headers.get("content-type", ""):
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        view = view_from_asgi(request.scope, body)
        lookups: dict[str, AccessKeyInfo | None] = {}

        def secret_of(access_key: str) -> str | None:
            lookups[access_key] = self._lookup(access_key)
            info = lookups[access_key]
            return info.secret_key if info else None

        identity = await run_in_threadpool(verify_ec2, view, secret_of)
        # A verified signature means secret_of found this key active: no second (blocking) look-up.
        caller = lookups[identity.access_key]
        assert caller is not None
        call = parse_request(pairs)
        self._recorder.record("received", call.action, request_id=request_id,
                              account=caller.account_id, user=caller.user_name)
        handler = handler_for(call.action)
        if handler is None:
            raise EC2Error("UnsupportedOperation",
                           f"The action {call.action} is not supported by this cloud yet.")
        if call.dry_run:
            raise EC2Error("DryRunOperation",
                           "Request would have succeeded, but DryRun flag is set.", 412)
        body = await run_in_threadpool(self._dispatch, call.action, handler, call.params, caller,
                                       request_id)
        return Response(body, media_type=XML)

    def _dispatch(self, action: str, handler: Callable[..., Any], params: dict[str, Any],
                  caller: AccessKeyInfo, request_id: str) -> bytes:
        taken, ignored = accepted_params(handler, params)
        if ignored:
            LOG.debug("%s ignores %s", handler.__name__, ignored)
        with self._db.session() as session:
            ctx = Context(db=session, account_id=caller.account_id, user_name=caller.user_name,
                          is_admin=caller.is_admin, request_id=request_id, config=self._config,
                          recorder=self._recorder, zones=self._zones,
                          launches=self._launches, walrus=self._walrus, network=self._network)
            # Rendered before the commit: a result that does not fit the output shape is a bug
            # that must not leave its change behind while the client sees an error.
            return render_result(action, handler(ctx, **taken), request_id)
