"""Each service's schema comes from its Alembic migrations, SQLite runs in WAL mode, and a
failed unit of work leaves nothing behind."""

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
