"""Object rows committed in groups: many PUTs, one transaction.

SQLite has one writer at a time, and a write transaction in a busy process costs far more than
its statements (each step hands the GIL back and forth with every other thread). So PUTs do
not each open one: a worker thread hands its row change to the committer and waits; the
committer applies every change waiting at that moment in one transaction, commits it (the
commit fsyncs the WAL: see walrus/app.py) and only then lets each PUT answer. While it
commits, the next group gathers. The group is applied by one function over all its changes
(`catalog.replace_objects`: three statements for any number of objects), because in a busy
process every statement, not every row, is what costs: each hands the GIL away and waits to
get it back.

A change that fails (say, an If-None-Match conflict raised as an S3 error) must not fail the
others of its group: the group is rolled back and each change applied again on its own."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from services.db import Database

C = TypeVar("C")
R = TypeVar("R")
MAX_GROUP = 256


class _Pending(Generic[C, R]):
    def __init__(self, change: C) -> None:
        self.change = change
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None

    def finish(self, result: R | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class GroupCommitter(Generic[C, R]):
    """Changes of type C, applied a group at a time by `apply_group(session, changes)`, which
    returns one result R per change, in order."""

    def __init__(self, db: Database, write_lock: threading.Lock,
                 apply_group: Callable[[Session, list[C]], list[R]]) -> None:
        self._db = db
        self._write_lock = write_lock
        self._apply_group = apply_group
        self._queue: queue.SimpleQueue[_Pending[C, R]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="walrus-commit", daemon=True)
        self._thread.start()

    def apply(self, change: C) -> R:
        """Apply `change` in the next group's transaction; return its result once that
        transaction is durable, or raise what applying it raised (and then nothing of it is
        stored). Blocks: call it from a worker thread."""
        pending: _Pending[C, R] = _Pending(change)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _serve(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(group)

    def _commit(self, group: list[_Pending[C, R]]) -> None:
        try:
            with self._write_lock, self._db.session() as session:
                results = self._apply_group(session, [p.change for p in group])
        except BaseException as error:
            if len(group) == 1:
                group[0].finish(error=error)
                return
            for pending in group:
                self._commit([pending])
            return
        for pending, result in zip(group, results, strict=True):
            pending.finish(result)
