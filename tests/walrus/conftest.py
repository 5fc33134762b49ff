"""Walrus as a real process on a free port (HTTP and HTTPS), two accounts and the cloud's own,
and clients configured the way users configure them.

Every Walrus these fixtures start runs once on each blob backend (walrus/blobs.py): `file`,
and `s3` over the test worker's Ceph RGW (the `ceph` fixture, tests/support/ceph.py), so every
test that uses them passes on both. A test looks at what is stored through `stored_blobs()`
and `unfinished_blobs()`, never at a backend's own directory or bucket."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from services.config import CloudConfig, load_config
from services.messages.identity import AccessKeyInfo
from tests.walrus.helpers import s3_client
from tests.walrus.process import walrus_process
from walrus.blobs import BLOB_ID

ALICE = AccessKeyInfo(access_key="AKIAALICE0000000001", secret_key="alice-secret-key-0000000000",
                      account_id="111111111111", account_name="alice", user_name="admin")
BOB = AccessKeyInfo(access_key="AKIABOB00000000000002", secret_key="bob-secret-key-00000000000",
                    account_id="222222222222", account_name="bob", user_name="admin")
CLOUD = AccessKeyInfo(access_key="AKIAEUCALYPTUS000003", secret_key="cloud-secret-key-0000000",
                      account_id="000000000000", account_name="eucalyptus", user_name="admin",
                      is_admin=True)


BACKENDS = ["file", "s3"]


@dataclass
class BlobBackend:
    """Where one Walrus keeps its bodies: its environment, and a look inside."""

    name: str
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    client: Any = None  # straight to the cluster, with the cluster's keys (s3)
    bucket: str = ""

    def stored(self) -> list[str]:
        """The ids of committed blobs."""
        if self.name == "s3":
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            # every blob, not the object that names the bucket's Walrus (walrus/s3_blobs.py)
            return [o["Key"] for page in pages for o in page.get("Contents", [])
                    if BLOB_ID.match(o["Key"])]
        root = self.home / "walrus" / "objects"
        return [p.name for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"]

    def read(self, blob_id: str) -> bytes:
        if self.name == "s3":
            return self.client.get_object(Bucket=self.bucket, Key=blob_id)["Body"].read()  # type: ignore[no-any-return]
        return (self.home / "walrus" / "objects" / blob_id[:2] / blob_id).read_bytes()

    def leave_crash_leftovers(self, orphan_id: str, unfinished_id: str) -> None:
        """What a Walrus killed mid-write leaves: a committed blob no row names (killed between
        the blob and its row) and a blob half written."""
        if self.name == "s3":
            self.client.put_object(Bucket=self.bucket, Key=orphan_id, Body=b"orphan")
            self.client.create_multipart_upload(Bucket=self.bucket, Key=unfinished_id)
            return
        objects = self.home / "walrus" / "objects"
        (objects / orphan_id[:2] / orphan_id).write_bytes(b"orphan")
        (objects / "tmp" / f"{unfinished_id}.part").write_bytes(b"half an object")

    def unfinished(self) -> list[str]:
        """Blobs being written: the file driver's temporary files, the cluster's uploads."""
        if self.name == "s3":
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            return [u["Key"] for u in uploads]
        return [p.name for p in (self.home / "walrus" / "objects" / "tmp").glob("*")]


def blob_backend(request: pytest.FixtureRequest, name: str, home: Path) -> BlobBackend:
    """A backend of its own for one Walrus: on s3, a fresh bucket in this worker's Ceph."""
    if name == "file":
        return BlobBackend("file", home)
    from tests.support.ceph import CephCluster
    from walrus.s3_blobs import S3Location, backend_client

    ceph: CephCluster = request.getfixturevalue("ceph")
    bucket = f"walrus-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    env = {"WALRUS_BACKEND": "s3", "WALRUS_S3_ENDPOINT": ceph.rgw_endpoint,
           "WALRUS_S3_ACCESS_KEY": ceph.access_key, "WALRUS_S3_SECRET_KEY": ceph.secret_key,
           "WALRUS_S3_BUCKET": bucket}
    client = backend_client(S3Location(ceph.rgw_endpoint, ceph.access_key, ceph.secret_key,
                                       bucket))
    return BlobBackend("s3", home, env, client, bucket)


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
        assert self.backend is not None
        return self.backend.unfinished()


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


# One server per backend for the whole session of a test worker, both kept running: a
# session fixture parametrized by backend would be torn down and started again at every
# file (--dist loadfile runs each file's tests on both backends together).
@pytest.fixture(scope="session")
def walrus_on_file(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
    with _server(request, tmp_path_factory, "file", https=False) as server:
        yield server


@pytest.fixture(scope="session")
def walrus_on_s3(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
    with _server(request, tmp_path_factory, "s3", https=False) as server:
        yield server


@pytest.fixture(scope="session")
def walrus_tls_on_file(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
    with _server(request, tmp_path_factory, "file", https=True) as server:
        yield server


@pytest.fixture(scope="session")
def walrus_tls_on_s3(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalrusServer]:
    with _server(request, tmp_path_factory, "s3", https=True) as server:
        yield server


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
