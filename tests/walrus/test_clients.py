"""The clients people use, unchanged: AWS CLI (s3 and s3api), s3cmd (SigV2 and SigV4, path and
virtual host), the minio SDK and boto 2."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.walrus.clients import aws, s3cmd, s3cmd_config
from tests.walrus.conftest import ALICE
from tests.walrus.helpers import keys_of


def test_aws_cli_s3_commands(walrus, s3, tmp_path: Path):  # type: ignore[no-untyped-def]
    aws(walrus, ALICE, "s3", "mb", "s3://cli-bucket")
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    (source / "one.txt").write_bytes(b"one")
    (source / "sub" / "two.bin").write_bytes(os.urandom(20000))
    aws(walrus, ALICE, "s3", "cp", str(source / "one.txt"), "s3://cli-bucket/one.txt")
    aws(walrus, ALICE, "s3", "sync", str(source), "s3://cli-bucket/tree")
    assert keys_of(s3, "cli-bucket") == ["one.txt", "tree/one.txt", "tree/sub/two.bin"]
    top = aws(walrus, ALICE, "s3", "ls", "s3://cli-bucket/").stdout
    assert "PRE tree/" in top and "one.txt" in top
    # a second sync finds nothing to do
    assert aws(walrus, ALICE, "s3", "sync", str(source), "s3://cli-bucket/tree").stdout == ""
    back = tmp_path / "back"
    aws(walrus, ALICE, "s3", "sync", "s3://cli-bucket/tree", str(back))
    assert (back / "sub" / "two.bin").read_bytes() == (source / "sub" / "two.bin").read_bytes()
    aws(walrus, ALICE, "s3", "rm", "--recursive", "s3://cli-bucket/tree")
    assert keys_of(s3, "cli-bucket") == ["one.txt"]


def test_aws_cli_s3api_and_errors(walrus, s3, tmp_path: Path):  # type: ignore[no-untyped-def]
    aws(walrus, ALICE, "s3api", "create-bucket", "--bucket", "cli-api")
    body = tmp_path / "b"
    body.write_bytes(b"api body")
    aws(walrus, ALICE, "s3api", "put-object", "--bucket", "cli-api", "--key", "k", "--body",
        str(body), "--metadata", "a=b")
    assert s3.head_object(Bucket="cli-api", Key="k")["Metadata"] == {"a": "b"}
    failed = aws(walrus, ALICE, "s3api", "get-object", "--bucket", "cli-api", "--key", "nope",
                 str(tmp_path / "out"), check=False)
    assert failed.returncode == 255 and "NoSuchKey" in failed.stderr
    failed = aws(walrus, ALICE, "s3api", "create-bucket", "--bucket", "Bad_Name", check=False)
    assert "InvalidBucketName" in failed.stderr


def test_aws_cli_large_file_is_multipart_and_ranged_download_is_byte_exact(walrus, s3, tmp_path):  # type: ignore[no-untyped-def]
    """200 MiB through `aws s3 cp`: multipart up (8 MiB parts) and ranged GETs down."""
    size = 200 * 1024 * 1024
    source = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with open(source, "wb") as handle:
        for index in range(size // len(block)):
            # every MiB differs, so a misplaced range shows
            piece = index.to_bytes(8, "big") + block[8:]
            handle.write(piece)
            digest.update(piece)
    s3.create_bucket(Bucket="cli-large")
    aws(walrus, ALICE, "s3", "cp", str(source), "s3://cli-large/big.bin")
    head = s3.head_object(Bucket="cli-large", Key="big.bin")
    assert head["ContentLength"] == size
    assert head["ETag"].endswith('-25"')  # 200 MiB in the CLI's 8 MiB parts
    source.unlink()
    target = tmp_path / "down.bin"
    aws(walrus, ALICE, "s3", "cp", "s3://cli-large/big.bin", str(target))
    assert target.stat().st_size == size
    check = hashlib.sha256()
    with open(target, "rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


@pytest.mark.parametrize("v2,virtual_host", [(True, False), (True, True), (False, False),
                                             (False, True)])
def test_s3cmd(walrus, s3, tmp_path: Path, v2: bool, virtual_host: bool):  # type: ignore[no-untyped-def]
    config = s3cmd_config(walrus, ALICE, tmp_path / "s3cfg", v2=v2, virtual_host=virtual_host)
    name = f"s3cmd-{'v2' if v2 else 'v4'}-{'vh' if virtual_host else 'path'}"
    s3cmd(config, "mb", f"s3://{name}")
    local = tmp_path / "file name.txt"
    local.write_bytes(b"from s3cmd " * 1000)
    s3cmd(config, "put", str(local), f"s3://{name}/dir/file name.txt")
    listing = s3cmd(config, "ls", f"s3://{name}/dir/").stdout
    assert "file name.txt" in listing
    s3cmd(config, "get", f"s3://{name}/dir/file name.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == local.read_bytes()
    assert keys_of(s3, name) == ["dir/file name.txt"]
    info = s3cmd(config, "info", f"s3://{name}/dir/file name.txt").stdout
    assert hashlib.md5(local.read_bytes()).hexdigest() in info
    s3cmd(config, "del", f"s3://{name}/dir/file name.txt")
    s3cmd(config, "rb", f"s3://{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_s3cmd_signurl_and_multipart(walrus, s3, tmp_path: Path):  # type: ignore[no-untyped-def]
    import httpx
    import time

    config = s3cmd_config(walrus, ALICE, tmp_path / "s3cfg", v2=False, virtual_host=False)
    s3cmd(config, "mb", "s3://s3cmd-mp")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    s3cmd(config, "put", "--multipart-chunk-size-mb=5", str(big), "s3://s3cmd-mp/big")
    assert s3.head_object(Bucket="s3cmd-mp", Key="big")["ETag"].endswith('-3"')
    url = s3cmd(config, "signurl", "s3://s3cmd-mp/big", f"+{int(time.time()) + 600}").stdout.strip()
    assert hashlib.md5(httpx.get(url).content).digest() == hashlib.md5(big.read_bytes()).digest()


def test_minio_sdk(walrus, s3, tmp_path: Path):  # type: ignore[no-untyped-def]
    import io

    from minio import Minio

    client = Minio(walrus.url.split("://", 1)[1], access_key=ALICE.access_key,
                   secret_key=ALICE.secret_key, secure=False, region="us-east-1")
    client.make_bucket("minio-bucket")
    assert client.bucket_exists("minio-bucket")
    data = os.urandom(300000)
    client.put_object("minio-bucket", "a/b", io.BytesIO(data), len(data),
                      metadata={"x-amz-meta-k": "v"})
    assert client.get_object("minio-bucket", "a/b").read() == data
    stat = client.stat_object("minio-bucket", "a/b")
    assert stat.size == len(data)
    assert [o.object_name for o in client.list_objects("minio-bucket", recursive=True)] == ["a/b"]
    assert [o.object_name for o in client.list_objects("minio-bucket")] == ["a/"]
    # minio's multipart (6 MiB parts by its own choice above 5 MiB when told the part size)
    big = os.urandom(11 * 1024 * 1024)
    client.put_object("minio-bucket", "big", io.BytesIO(big), -1, part_size=5 * 1024 * 1024)
    assert hashlib.sha256(client.get_object("minio-bucket", "big").read()).digest() == \
        hashlib.sha256(big).digest()
    import httpx
    from datetime import timedelta

    url = client.presigned_get_object("minio-bucket", "a/b", expires=timedelta(minutes=5))
    assert httpx.get(url).content == data
    client.remove_object("minio-bucket", "a/b")
    assert "a/b" not in keys_of(s3, "minio-bucket")


def test_boto2(walrus, tmp_path: Path):  # type: ignore[no-untyped-def]
    import boto
    from boto.s3.connection import OrdinaryCallingFormat, S3Connection

    host, port = walrus.url.split("://", 1)[1].rsplit(":", 1)
    connection = S3Connection(ALICE.access_key, ALICE.secret_key, host=host, port=int(port),
                              is_secure=False, calling_format=OrdinaryCallingFormat())
    bucket = connection.create_bucket("boto2-bucket")
    key = bucket.new_key("hello/boto2.txt")
    key.set_contents_from_string("boto 2 body", headers={"Content-Type": "text/plain"})
    assert bucket.get_key("hello/boto2.txt").get_contents_as_string() == b"boto 2 body"
    assert [k.name for k in bucket.list()] == ["hello/boto2.txt"]
    upload = bucket.initiate_multipart_upload("mp")
    upload.upload_part_from_file(open(__file__, "rb"), 1)
    upload.complete_upload()
    assert bucket.get_key("mp").get_contents_as_string() == Path(__file__).read_bytes()
    assert boto.__version__.startswith("2.")
