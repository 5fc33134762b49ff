"""Walrus as a real process on a free port (HTTP and HTTPS), two accounts and the cloud's own,
and clients configured the way users configure them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import CloudConfig, load_config
from services.messages.identity import AccessKeyInfo
from tests.walrus.helpers import s3_client
from tests.walrus.process import walrus_process

ALICE = AccessKeyInfo(access_key="AKIAALICE0000000001", secret_key="alice-secret-key-0000000000",
                      account_id="111111111111", account_name="alice", user_name="admin")
BOB = AccessKeyInfo(access_key="AKIABOB00000000000002", secret_key="bob-secret-key-00000000000",
                    account_id="222222222222", account_name="bob", user_name="admin")
CLOUD = AccessKeyInfo(access_key="AKIAEUCALYPTUS000003", secret_key="cloud-secret-key-0000000",
                      account_id="000000000000", account_name="eucalyptus", user_name="admin",
                      is_admin=True)


@dataclass
class WalrusServer:
    url: str
    home: Path
    config: CloudConfig
    ca_bundle: str | None = None

    def client(self, who: AccessKeyInfo = ALICE, **config: object):  # type: ignore[no-untyped-def]
        return s3_client(self.url, who.access_key, who.secret_key, self.ca_bundle or None,
                         **config)

    def database(self):  # type: ignore[no-untyped-def]
        from services.db import Database

        return Database(self.config.database_url("walrus"))

    def stored_blobs(self) -> list[Path]:
        root = self.home / "walrus" / "objects"
        return [p for p in root.rglob("*") if p.is_file()]


def make_config(home: Path, **extra: object) -> CloudConfig:
    return load_config(EUCASIM_HOME=home, CLOUD_SECRET="test-secret", **extra)


@pytest.fixture(scope="session")
def walrus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
    """Walrus as a real process over HTTP."""
    home = tmp_path_factory.mktemp("walrus-home")
    with walrus_process(home, [ALICE, BOB, CLOUD]) as (url, _):
        yield WalrusServer(url, home, make_config(home))


@pytest.fixture(scope="session")
def walrus_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
    """Walrus as a real process over HTTPS, its certificate from the cloud CA."""
    home = tmp_path_factory.mktemp("walrus-tls-home")
    with walrus_process(home, [ALICE, BOB, CLOUD], https=True) as (url, _):
        yield WalrusServer(url, home, make_config(home), ca_bundle=str(home / "tls" / "ca.pem"))


@pytest.fixture(scope="session")
def s3(walrus: WalrusServer):  # type: ignore[no-untyped-def]
    return walrus.client(ALICE)


_counter = 0


@pytest.fixture
def bucket(s3) -> str:  # type: ignore[no-untyped-def]
    global _counter
    _counter += 1
    name = f"test-bucket-{_counter:04d}"
    s3.create_bucket(Bucket=name)
    return name
