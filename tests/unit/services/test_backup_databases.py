"""How `eucasim backup` and `restore` carry one service's database (services/backup.py), on a
real PostgreSQL server and SQLite files: PostgreSQL is dumped into a SQLite file of the same
schema revision in one snapshot, and a dump loads into PostgreSQL or SQLite with every row,
time and flag as it was; PostgreSQL's sequences go on after the copied keys; stored paths of
the old home are rewritten wherever a text names them; a target that holds data is refused untouched."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from clc.app import MIGRATIONS
from clc.models.accounts import Account, User
from clc.models.resources import KeyPair
from services.backup import BackupError, dump_database, load_database, rewrite_paths
from services.db import Database

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def fill(db: Database) -> None:
    db.upgrade(MIGRATIONS)
    with db.session() as session:
        session.add(Account(id="111122223333", name="teacher", created_at=AT))
        session.flush()
        session.add_all([User(account_id="111122223333", name="admin", is_admin=True, created_at=AT),
                         User(account_id="111122223333", name="student", is_admin=False, created_at=AT)])
        session.add(KeyPair(id="key-0123abcd", account_id="111122223333", name="mover",
                            key_type="rsa", fingerprint="ff", public_key="ssh-rsa AAAA /old/home/id.pub",
                            created_at=AT))


def rows(db: Database) -> list[tuple[object, ...]]:
    with db.session() as session:
        users = [(u.id, u.name, u.is_admin, u.created_at.replace(tzinfo=timezone.utc) if u.created_at.tzinfo is None
                  else u.created_at) for u in session.scalars(select(User).order_by(User.id))]
        keys = [(k.name, k.public_key) for k in session.scalars(select(KeyPair))]
    return [*users, *keys]


def test_postgresql_to_a_dump_and_back_into_postgresql_and_sqlite(tmp_path: Path, postgres) -> None:  # type: ignore[no-untyped-def]
    source = Database(postgres.database_url("backup_source"))
    fill(source)
    expected = rows(source)
    assert [r[:3] for r in expected[:2]] == [(1, "admin", True), (2, "student", False)]
    revision = dump_database("clc", source.url, tmp_path / "clc.sqlite")
    assert revision

    for url in (postgres.url("backup_target"), f"sqlite:///{tmp_path}/restored/clc.db"):
        load_database("clc", tmp_path / "clc.sqlite", url, revision)
        target = Database(url)
        assert rows(target) == expected
        # The service upgrades on start, and adds rows after the copied keys.
        target.upgrade(MIGRATIONS)
        with target.session() as session:
            session.add(User(account_id="111122223333", name="new"))
        with target.session() as session:
            assert session.scalar(select(User.id).where(User.name == "new")) == 3
        assert rewrite_paths(url, [("/old/home/", "/new/home/")]) == 1
        with target.session() as session:
            key = session.scalar(select(KeyPair))
            assert (key.id, key.public_key) == ("key-0123abcd", "ssh-rsa AAAA /new/home/id.pub")
        target.engine.dispose()

    with pytest.raises(BackupError, match="not empty"):
        load_database("clc", tmp_path / "clc.sqlite", postgres.url("backup_target"), revision)
    with pytest.raises(BackupError, match="already exists"):
        load_database("clc", tmp_path / "clc.sqlite", f"sqlite:///{tmp_path}/restored/clc.db", revision)
    source.engine.dispose()


def test_old_service_addresses_move_only_to_ports_known_before_the_start(tmp_path: Path) -> None:
    from services.backup import _url_moves
    from services.config import load_config

    old = {"walrus": "http://10.0.0.1:8777", "sc": "http://10.0.0.1:8776", "cc": "http://10.0.0.1:8774"}
    config = load_config(EUCASIM_HOME=tmp_path, PUBLIC_HOST="10.0.0.2", WALRUS_PORT=9777, SC_PORT=0,
                         CC_PORT=8774, CC_URL="http://10.0.0.1:8774")
    assert _url_moves(config, old) == [("http://10.0.0.1:8777/", "http://10.0.0.2:9777/")]
