"""Each service's schema comes from its Alembic migrations, SQLite runs in WAL mode, and a
failed unit of work leaves nothing behind."""

import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from clc.app import MIGRATIONS
from clc.models.accounts import Account
from services.db import Database


def test_migrations_build_the_schema_and_run_twice(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path}/clc.db")
    db.upgrade(MIGRATIONS)
    db.upgrade(MIGRATIONS)  # idempotent: an upgraded cloud restarts cleanly
    tables = set(inspect(db.engine).get_table_names())
    assert {"accounts", "users", "access_keys", "key_pairs", "security_groups", "tags",
            "alembic_version"} <= tables
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_failed_unit_of_work_is_rolled_back(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path}/clc.db")
    db.upgrade(MIGRATIONS)
    with pytest.raises(RuntimeError):
        with db.session() as session:
            session.add(Account(id="123456789012", name="half-made"))
            session.flush()
            raise RuntimeError("boom")
    with db.session() as session:
        assert session.scalar(select(Account).where(Account.name == "half-made")) is None


def test_many_threads_each_holding_a_session_inside_another_never_run_out_of_connections(
        tmp_path: Path):
    # Request threads open a session inside another; a bounded pool (5 + 10) held by 20 such
    # threads, each waiting for its second connection, timed out every one of them.
    db = Database(f"sqlite:///{tmp_path}/clc.db")
    db.upgrade(MIGRATIONS)
    db.engine.pool._timeout = 2  # a stall fails in seconds, not the default 30
    all_inside = threading.Barrier(20, timeout=20)
    failures: list[BaseException] = []

    def request(n: int) -> None:
        try:
            with db.session() as outer:
                outer.execute(text("SELECT 1"))
                all_inside.wait()  # every thread holds a connection now
                with db.session() as inner:
                    inner.add(Account(id=f"{n:012d}", name=f"account-{n}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with db.session() as session:
        assert len(session.scalars(select(Account).where(Account.name.like("account-%"))).all()) == 20
