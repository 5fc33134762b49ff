"""A GET's body streamed from the blob store (walrus/blobs.py's `iter_range`), each chunk read
in a worker thread (walrus/offload.py), sent as it comes.

Starlette's StreamingResponse does the same with a sync iterator, but on uvicorn (ASGI spec
2.3) it opens an anyio task group per response to watch for the client leaving, and reads
every chunk through anyio's thread hop: for a 1 MiB object that bookkeeping cost more on the
event loop than sending the megabyte. Here one plain task watches for the disconnect, and a
chunk is one off_loop hop. A client that leaves stops the reading at the next chunk, and the
blob's iterator is closed (its open file or cluster response released) in a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from walrus.offload import off_loop


class BlobStream(Response):
    def __init__(self, chunks: Iterator[bytes], status_code: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        self.chunks = chunks
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch(receive, gone))
        ended = False
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            while not gone.is_set():
                chunk = await off_loop(next, self.chunks, None)
                if chunk is None:
                    ended = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            watcher.cancel()
            close = getattr(self.chunks, "close", None)
            if not ended and close is not None:  # an iterator run to its end has let go
                await off_loop(close)


async def _watch(receive: Receive, gone: asyncio.Event) -> None:
    """Sets `gone` when the client disconnects (the request's body, if any, was read before)."""
    with contextlib.suppress(asyncio.CancelledError):
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()
