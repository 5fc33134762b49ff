"""Two CreateTags that add the same new key to one resource at once, interleaved in the
worst order on a real database with the CLC's schema (SQLite, and PostgreSQL, where the upsert
is spelled in its own dialect): both read "no such tag", the first commits its row, and the
second's write still succeeds (it overwrites the value, as a later CreateTags would) instead of
breaking the unique key (a 500 to its caller)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, select

from clc import tagging
from clc.app import MIGRATIONS
from clc.models.accounts import Account
from clc.models.resources import Tag
from services.db import Database


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_second_of_two_interleaved_create_tags_overwrites_instead_of_failing(
        tmp_path: Path, database: str, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/clc.db" if database == "sqlite"
           else request.getfixturevalue("postgres").database_url("clc_tag_race"))
    db = Database(url)
    db.upgrade(MIGRATIONS)
    with db.session() as session:
        session.add(Account(id="123456789012", name="tagger"))
    second_writes = threading.Event()
    second: list[BaseException | None] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _writes(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "second" and statement.lstrip().upper().startswith("INSERT"):
            second_writes.set()

    def run_second() -> None:
        try:
            with db.session() as session:
                tagging.set_tags(session, "123456789012", "sg-12345678", "security-group", {"k": "second"})
            second.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported on the test's thread
            second.append(exc)

    with db.session() as session:
        # The first holds the write lock (SQLite's, or the row's key in PostgreSQL's unique
        # index) with its row written, not yet committed ...
        tagging.set_tags(session, "123456789012", "sg-12345678", "security-group", {"k": "first"})
        session.flush()
        thread = threading.Thread(target=run_second, name="second")
        thread.start()
        # ... while the second has read no tag "k" and now waits to write its own.
        assert second_writes.wait(20)
    thread.join(30)
    assert second == [None]
    with db.session() as session:
        assert [(t.key, t.value) for t in session.scalars(select(Tag))] == [("k", "second")]
    db.engine.dispose()
