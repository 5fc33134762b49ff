"""What Walrus keeps on disk: objects survive a restart, crash leftovers are swept, and the
data directory holds only blob files named by id."""

from __future__ import annotations

from pathlib import Path

import boto3
from botocore.config import Config

from services.identity import StaticKeyDirectory
from tests.support.servers import running
from tests.walrus.conftest import ALICE, make_config
from walrus.app import create_app


def client(url: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=ALICE.access_key, aws_secret_access_key=ALICE.secret_key,
                        config=Config(s3={"addressing_style": "path"}))


def test_objects_survive_a_restart_and_crash_leftovers_are_swept(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    keys = StaticKeyDirectory([ALICE])
    with running(create_app(config, keys=keys)) as url:
        s3 = client(url)
        s3.create_bucket(Bucket="durable")
        s3.put_object(Bucket="durable", Key="../../escape", Body=b"kept")
    objects = tmp_path / "walrus" / "objects"
    # what a crash in the middle of an upload leaves: a temporary file no row points at
    leftover = objects / "tmp" / "0123456789abcdef0123456789abcdef.part"
    leftover.write_bytes(b"half an object")
    with running(create_app(config, keys=keys)) as url:
        s3 = client(url)
        assert s3.get_object(Bucket="durable", Key="../../escape")["Body"].read() == b"kept"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="durable")["Contents"]] == \
            ["../../escape"]
    assert not leftover.exists()
    files = [p for p in objects.rglob("*") if p.is_file()]
    assert len(files) == 1 and len(files[0].name) == 32 and files[0].read_bytes() == b"kept"
    assert not (tmp_path / "escape").exists()
