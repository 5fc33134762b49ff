"""A stand-in for the CC's side of services/messages/attach.py, in front of the real CC: it
answers AttachDisk/DetachDisk itself (remembering what each instance has, refusing a device in
use as the contract says, or failing when a test asks) and passes every other call on to the
real CC unchanged, so the rest of the cloud runs as `make up` runs it. Served on a real port;
the cloud reaches it through CC_URL, and it learns the real CC's address (`forward_to`) once
the launcher has bound the CC's port. Used until the real CC/NC attach path lands."""

from __future__ import annotations

import threading

import httpx
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.internal import InternalAuth
from services.messages.attach import (ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk,
                                      DiskAttachment, DiskSource)

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class AttachingCC:
    def __init__(self, secret: str) -> None:
        self._http: httpx.Client | None = None
        self.disks: dict[str, dict[str, tuple[str, DiskSource]]] = {}  # instance -> volume -> ...
        self.fail_next = False
        self.hold = threading.Event()       # set: the next AttachDisk waits for `release`
        self.held = threading.Event()       # an AttachDisk is waiting now
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.app = self._make_app(secret)

    def forward_to(self, real_cc: str) -> None:
        self._http = httpx.Client(base_url=real_cc, timeout=60)

    def _make_app(self, secret: str) -> FastAPI:
        app = FastAPI()
        auth = [Depends(InternalAuth(secret))]

        @app.post(ATTACH_ROUTE, dependencies=auth, response_model=None)
        def attach(instance_id: str, body: AttachDisk) -> DiskAttachment | JSONResponse:
            if self.hold.is_set():
                self.hold.clear()
                self.held.set()
                self.release.wait(60)
            with self._lock:
                if self.fail_next:
                    self.fail_next = False
                    return JSONResponse({"detail": {"code": "InternalError",
                                                    "message": "the node could not define the disk"}},
                                        status_code=500)
                disks = self.disks.setdefault(instance_id, {})
                if any(dev == body.device and vol != body.volume_id for vol, (dev, _) in disks.items()):
                    return JSONResponse({"detail": {"code": "InvalidParameterValue",
                                                    "message": f"{body.device} is in use"}},
                                        status_code=409)
                disks[body.volume_id] = (body.device, body.source)
            return DiskAttachment(instance_id=instance_id, volume_id=body.volume_id,
                                  device=body.device, state="attached",
                                  target=body.device.removeprefix("/dev/"))

        @app.post(DETACH_ROUTE, dependencies=auth)
        def detach(instance_id: str, volume_id: str, body: DetachDisk) -> DiskAttachment:
            with self._lock:
                device, _ = self.disks.get(instance_id, {}).pop(volume_id, ("", None))
            return DiskAttachment(instance_id=instance_id, volume_id=volume_id, device=device,
                                  state="detached")

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def forward(path: str, request: Request) -> Response:
            body = await request.body()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            assert self._http is not None, "forward_to() first"
            http = self._http
            answer = await _in_thread(lambda: http.request(
                request.method, target, content=body, headers=headers))
            return Response(answer.content, status_code=answer.status_code,
                            media_type=answer.headers.get("content-type"))

        return app

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


async def _in_thread(call):  # type: ignore[no-untyped-def]
    import asyncio
    return await asyncio.to_thread(call)
