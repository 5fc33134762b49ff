"""A migrated CLC database with its admin account, for the instance behaviour tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clc.app import bootstrap
from services.config import CloudConfig, load_config
from services.db import Database


@dataclass
class ClcState:
    config: CloudConfig
    db: Database
    account_id: str


def make_state(home: Path, **overrides: object) -> ClcState:
    config = load_config(EUCASIM_HOME=home, CLOUD_SECRET="test-secret", **overrides)
    db = Database(config.database_url("clc"))
    creds = bootstrap(config, db)
    return ClcState(config, db, creds.key.account_id)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ClcState]:
    made = make_state(tmp_path)
    yield made
    made.db.engine.dispose()
