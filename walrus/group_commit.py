"""Object rows committed in groups: many PUTs, one transaction.

SQLite has one writer at a time, and a write transaction in a busy process costs far more than
its statements (each step hands the GIL back and forth with every other thread). So PUTs do
not each open one: a worker thread hands its row change to the committer and waits; the
committer applies every change waiting at that moment in one transaction, commits it (the
commit fsyncs the WAL: see walrus/app.py) and only then lets each PUT answer. While it
commits, the next group gathers.

A change that fails (say, an If-None-Match conflict raised as an S3 error) must not fail the
others of its group: the group is rolled back and each change applied again on its own."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from services.db import Database

T = TypeVar("T")
MAX_GROUP = 256


class _Change(Generic[T]):
    def __init__(self, work: Callable[[Session], T]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def finish(self, result: T | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class GroupCommitter:
    def __init__(self, db: Database, write_lock: threading.Lock) -> None:
        self._db = db
        self._write_lock = write_lock
        self._queue: queue.SimpleQueue[_Change[Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="walrus-commit", daemon=True)
        self._thread.start()

    def apply(self, work: Callable[[Session], T]) -> T:
        """Run `work` in the next group's transaction; return its result once that transaction
        is durable, or raise what `work` raised (and then nothing of it is stored). Blocks:
        call it from a worker thread."""
        change = _Change(work)
        self._queue.put(change)
        change.done.wait()
        if change.error is not None:
            raise change.error
        return change.result  # type: ignore[return-value]

    def _serve(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(group)

    def _commit(self, group: list[_Change[Any]]) -> None:
        try:
            with self._write_lock, self._db.session() as session:
                results = [change.work(session) for change in group]
        except BaseException as error:
            if len(group) == 1:
                group[0].finish(error=error)
                return
            for change in group:
                self._commit([change])
            return
        for change, result in zip(group, results):
            change.finish(result)
