"""A large GET's body read ahead of its client by a thread of its own (walrus/s3_blobs.py)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

# Chunks of a large GET read from the cluster ahead of what the client has taken.
READ_AHEAD = 4


def read_ahead(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, read by a thread of its own up to READ_AHEAD chunks ahead: the cluster sends
    the next chunk while the client takes this one, instead of each waiting for the other. A
    thread per large GET, not one from a pool: a slow reader parks it, and must not park the
    threads other requests need. It ends when the reader stops (the iterator is closed)."""
    ahead: queue.Queue[bytes | None | BaseException] = queue.Queue(READ_AHEAD)
    stopped = threading.Event()

    def offer(item: bytes | None | BaseException) -> bool:
        while not stopped.is_set():
            try:
                ahead.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for data in chunks:
                if not offer(data):
                    return
            offer(None)
        except BaseException as error:  # handed to the reader, whose request it fails
            offer(error)
        finally:
            chunks.close()  # type: ignore[attr-defined]

    threading.Thread(target=produce, name="walrus-s3-read", daemon=True).start()
    return _AheadReader(ahead, stopped)


class _AheadReader:
    """The reader's end of `read_ahead`. A class, not a generator: one dropped before its
    first chunk (a response never sent) still stops its thread when it is collected."""

    def __init__(self, ahead: queue.Queue[bytes | None | BaseException],
                 stopped: threading.Event) -> None:
        self._ahead = ahead
        self._stopped = stopped

    def __iter__(self) -> _AheadReader:
        return self

    def __next__(self) -> bytes:
        if self._stopped.is_set():
            raise StopIteration
        item = self._ahead.get()
        if item is None or isinstance(item, BaseException):
            self.close()
            if item is None:
                raise StopIteration
            raise item
        return item

    def close(self) -> None:
        self._stopped.set()

    def __del__(self) -> None:
        self._stopped.set()
