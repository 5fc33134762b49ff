"""The pause `eucasim backup` takes: POST /internal/quiesce (signed) closes the process's write
gate — a session under way is waited for and counted, a new one waits until POST
/internal/resume, a nested one on a thread already inside passes — and a gate nobody reopens
opens by itself when its hold runs out. Unsigned callers change nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from clc.app import MIGRATIONS
from clc.models.accounts import Account
from services.db import WRITES, Database
from services.internal import InternalCallError, InternalClient
from services.messages.backup import QUIESCE_ROUTE, RESUME_ROUTE, Quiesce, WriteState
from services.service_app import make_service_app
from tests.support.servers import running


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/clc.db")
    database.upgrade(MIGRATIONS)
    yield database
    WRITES.open()
    database.engine.dispose()


def add_account(db: Database, name: str, done: list[str]) -> None:
    with db.session() as session:
        session.add(Account(id=f"{len(name):012d}", name=name))
    done.append(name)


def test_quiesce_waits_for_the_session_under_way_and_holds_new_ones_until_resume(db: Database) -> None:
    app, _ = make_service_app("test", "s3cret")
    done: list[str] = []
    with running(app) as url:
        client = InternalClient(url, "s3cret", timeout=30)
        with pytest.raises(InternalCallError):
            InternalClient(url, "wrong").call("POST", QUIESCE_ROUTE, Quiesce(), WriteState)
        assert not WRITES.closed
        with db.session():                      # a session under way that does not end in time
            busy = client.call("POST", QUIESCE_ROUTE, Quiesce(hold_s=60, drain_s=0.2), WriteState)
            assert (busy.paused, busy.busy) == (True, 1)
            with db.session():                  # nested on the same thread: passes
                pass
        writer = threading.Thread(target=add_account, args=(db, "waits", done))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and done == []
        quiet = client.call("POST", QUIESCE_ROUTE, Quiesce(hold_s=60, drain_s=5), WriteState)
        assert (quiet.paused, quiet.busy) == (True, 0)
        assert client.call("POST", RESUME_ROUTE, None, WriteState).paused is False
        writer.join(10)
        assert done == ["waits"]
        # A hold that is not a positive time is refused, and nothing pauses.
        with pytest.raises(InternalCallError) as refused:
            client.call("POST", QUIESCE_ROUTE, Quiesce.model_construct(hold_s=-1, drain_s=0), WriteState)
        assert refused.value.status == 422 and not WRITES.closed
        assert httpx.post(f"{url}{QUIESCE_ROUTE}", json={}).status_code in (401, 403)


def test_a_gate_nobody_reopens_opens_by_itself_when_its_hold_runs_out(db: Database) -> None:
    assert WRITES.close(hold_s=0.5, drain_s=1) == 0
    started = time.monotonic()
    done: list[str] = []
    add_account(db, "later", done)
    assert done == ["later"] and time.monotonic() - started >= 0.4
    assert not WRITES.closed


def test_a_backup_of_a_cloud_that_does_not_answer_pauses_nothing_and_leaves_its_folder_empty(
        tmp_path: Path) -> None:
    from services.backup import BackupError, backup
    from services.config import load_config
    from tests.support.servers import refused_port

    with refused_port() as port:
        config = load_config(EUCASIM_HOME=tmp_path / "home", CLOUD_SECRET="s3cret", CLC_PORT=port)
        with pytest.raises(BackupError, match="cannot pause the CLC"):
            backup(config, tmp_path / "backup")
    assert list((tmp_path / "backup").iterdir()) == []
