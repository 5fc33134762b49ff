"""The SC's own requests to Walrus (sc/snapshot_http.py) against a real Walrus: what they store
reads back through boto3 as any object does, Walrus's refusals come back as botocore's
ClientError with Walrus's code (so the SC handles them as it handled the client's), and a
Walrus that cannot be reached is botocore's connection error."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sc.snapshot_http import SnapshotHTTP
from sc.snapstore import crc32c_b64
from services.ids import new_id
from tests.sc.process import Walrus
from tests.support.servers import refused_port


def client(walrus: Walrus) -> SnapshotHTTP:
    return SnapshotHTTP(walrus.url, lambda: walrus.admin, "eucalyptus", 2)


def test_a_part_put_with_its_crc32c_reads_back_with_it(walrus: Walrus) -> None:
    http = client(walrus)
    bucket = f"snapset-{new_id('snap')}"
    http.create_bucket(bucket)
    http.create_bucket(bucket)  # again, as an upload resumed after a crash does: no error
    body = bytearray(os.urandom(3 * 1024 * 1024 + 5))
    http.put(bucket, "part-00000000", body, crc32c_b64(body))
    assert http.get(bucket, "part-00000000") == body
    head = walrus.s3().head_object(Bucket=bucket, Key="part-00000000", ChecksumMode="ENABLED")
    assert (head["ContentLength"], head["ChecksumCRC32C"]) == (len(body), crc32c_b64(body))


def test_walrus_refusals_are_client_errors_with_its_codes(walrus: Walrus) -> None:
    http = client(walrus)
    bucket = f"snapset-{new_id('snap')}"
    with pytest.raises(ClientError) as missing_bucket:
        http.put(bucket, "part-00000000", b"data", crc32c_b64(b"data"))
    assert missing_bucket.value.response["Error"]["Code"] == "NoSuchBucket"
    http.create_bucket(bucket)
    with pytest.raises(ClientError) as bad:
        http.put(bucket, "part-00000000", b"data", crc32c_b64(b"other data"))
    assert bad.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError) as missing_key:
        http.get(bucket, "part-00000000")  # the refused part was not stored
    assert missing_key.value.response["Error"]["Code"] == "NoSuchKey"
    someone = SnapshotHTTP(walrus.url, lambda: walrus.admin.model_copy(update={"secret_key": "x" * 40}),
                           "eucalyptus", 1)
    with pytest.raises(ClientError) as forged:
        someone.get(bucket, "part-00000000")
    assert forged.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_an_unreachable_walrus_is_a_connection_error(walrus: Walrus) -> None:
    with refused_port() as port:
        http = SnapshotHTTP(f"http://127.0.0.1:{port}", lambda: walrus.admin, "eucalyptus", 1)
        with pytest.raises(EndpointConnectionError):
            http.create_bucket("snapset-snap-00000000")
