"""What Walrus keeps in its blob store (on each backend): objects survive a restart, crash
leftovers are swept, and the store holds only blobs named by id."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from services.identity import StaticKeyDirectory
from tests.support.servers import running
from tests.support.blob_backends import blob_backend
from tests.walrus.conftest import ALICE, make_config
from walrus.app import create_app

ORPHAN = "ab" + "0" * 30
HALF_WRITTEN = "cd" + "0" * 30


def client(url: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=ALICE.access_key, aws_secret_access_key=ALICE.secret_key,
                        config=Config(s3={"addressing_style": "path"}))


def test_objects_survive_a_restart_and_crash_leftovers_are_swept(
        tmp_path: Path, request: pytest.FixtureRequest, backend_name: str) -> None:
    backend = blob_backend(request, backend_name, tmp_path)
    config = make_config(tmp_path, **backend.env)
    keys = StaticKeyDirectory([ALICE])
    with running(create_app(config, keys=keys)) as url:
        s3 = client(url)
        s3.create_bucket(Bucket="durable")
        s3.put_object(Bucket="durable", Key="../../escape", Body=b"kept")
    backend.leave_crash_leftovers(ORPHAN, HALF_WRITTEN)
    assert ORPHAN in backend.stored() and backend.unfinished() != []
    with running(create_app(config, keys=keys)) as url:
        s3 = client(url)
        assert s3.get_object(Bucket="durable", Key="../../escape")["Body"].read() == b"kept"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="durable")["Contents"]] == \
            ["../../escape"]
    assert backend.unfinished() == []
    stored = backend.stored()
    assert len(stored) == 1 and len(stored[0]) == 32 and backend.read(stored[0]) == b"kept"
    assert not (tmp_path / "escape").exists()
