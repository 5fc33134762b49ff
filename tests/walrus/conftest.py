"""Walrus as a real process on a free port (HTTP and HTTPS), two accounts and the cloud's own,
and clients configured the way users configure them.

Every Walrus these fixtures start runs once on each blob backend (walrus/blobs.py): `file`,
and `s3` over the test worker's Ceph RGW (the `ceph` fixture, tests/support/ceph.py), so every
test that uses them passes on both. A test looks at what is stored through `stored_blobs()`
and `unfinished_blobs()`, never at a backend's own directory or bucket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from services.config import CloudConfig, load_config
from services.messages.identity import AccessKeyInfo
from tests.support.blob_backends import BACKENDS, BlobBackend, blob_backend
from tests.walrus.helpers import s3_client
from tests.walrus.process import walrus_process

ALICE = AccessKeyInfo(access_key="AKIAALICE0000000001", secret_key="alice-secret-key-0000000000",
                      account_id="111111111111", account_name="alice", user_name="admin")
BOB = AccessKeyInfo(access_key="AKIABOB00000000000002", secret_key="bob-secret-key-00000000000",
                    account_id="222222222222", account_name="bob", user_name="admin")
CLOUD = AccessKeyInfo(access_key="AKIAEUCALYPTUS000003", secret_key="cloud-secret-key-0000000",
                      account_id="000000000000", account_name="eucalyptus", user_name="admin",
                      is_admin=True)


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """For tests that start Walrus themselves: once per blob backend."""
    return str(request.param)


@dataclass
class WalrusServer:
    url: str
    home: Path
    config: CloudConfig
    ca_bundle: str | None = None
    backend: BlobBackend | None = None

    @cached_property
    def alice(self):  # type: ignore[no-untyped-def]
        """One client for the tests that need no other (boto3 clients are slow to build)."""
        return self.client(ALICE)

    def client(self, who: AccessKeyInfo = ALICE, **config: object):  # type: ignore[no-untyped-def]
        return s3_client(self.url, who.access_key, who.secret_key, self.ca_bundle or None,
                         **config)

    def database(self):  # type: ignore[no-untyped-def]
        from services.db import Database

        return Database(self.config.database_url("walrus"))

    def stored_blobs(self) -> list[str]:
        """The ids of the bodies Walrus has committed, in whichever backend it uses."""
        assert self.backend is not None
        return self.backend.stored()

    def unfinished_blobs(self) -> list[str]:
        """Blobs being written; not the cluster uploads that hold Walrus's multipart uploads
        (`cluster_uploads()`), which live as long as those do."""
        assert self.backend is not None
        named = set(self.cluster_uploads())
        return [b for b in self.backend.unfinished() if b not in named]

    def cluster_uploads(self) -> list[str]:
        """The blobs the cluster's uploads are writing for Walrus's multipart uploads (on a
        backend that maps them: walrus/s3_multipart.py), as its database names them."""
        from sqlalchemy import select

        from walrus.models import Upload

        database = self.database()
        try:
            with database.session() as db:
                return [b for b in db.scalars(select(Upload.blob_id)) if b is not None]
        finally:
            database.engine.dispose()


def make_config(home: Path, **extra: object) -> CloudConfig:
    return load_config(EUCASIM_HOME=home, CLOUD_SECRET="test-secret", **extra)


@contextmanager
def _server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            backend_name: str, https: bool) -> Iterator[WalrusServer]:
    home = tmp_path_factory.mktemp(f"walrus{'-tls' if https else ''}-{backend_name}-home")
    backend = blob_backend(request, backend_name, home)
    with walrus_process(home, [ALICE, BOB, CLOUD], https=https, **backend.env) as (url, _):
        yield WalrusServer(url, home, make_config(home, **backend.env),
                           ca_bundle=str(home / "tls" / "ca.pem") if https else None,
                           backend=backend)


def _session_server(backend: str, https: bool) -> Any:
    """A session fixture: one Walrus on `backend` for the whole session of a test worker.
    One per backend, each kept running: a session fixture parametrized by backend would be
    torn down and started again at every file (--dist loadfile runs each file's tests on both
    backends together)."""
    @pytest.fixture(scope="session")
    def server(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
        with _server(request, tmp_path_factory, backend, https=https) as running:
            yield running
    return server


walrus_on_file = _session_server("file", https=False)
walrus_on_s3 = _session_server("s3", https=False)
walrus_tls_on_file = _session_server("file", https=True)
walrus_tls_on_s3 = _session_server("s3", https=True)


@pytest.fixture(params=BACKENDS)
def walrus(request: pytest.FixtureRequest) -> WalrusServer:
    """Walrus as a real process over HTTP, on each blob backend."""
    return request.getfixturevalue(f"walrus_on_{request.param}")  # type: ignore[no-any-return]


@pytest.fixture(params=BACKENDS)
def walrus_tls(request: pytest.FixtureRequest) -> WalrusServer:
    """Walrus as a real process over HTTPS, its certificate from the cloud CA."""
    return request.getfixturevalue(f"walrus_tls_on_{request.param}")  # type: ignore[no-any-return]


@pytest.fixture
def s3(walrus: WalrusServer):  # type: ignore[no-untyped-def]
    return walrus.alice


_counter = 0


@pytest.fixture
def bucket(s3) -> str:  # type: ignore[no-untyped-def]
    global _counter
    _counter += 1
    name = f"test-bucket-{_counter:04d}"
    s3.create_bucket(Bucket=name)
    return name
