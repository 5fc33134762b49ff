"""Bodies larger than one of the s3 driver's parts (walrus/s3_blobs.py PART_SIZE), on each
backend: what users see (ETags, checksums, ranges, parts) is Walrus's own, not the cluster's,
and a refused large upload leaves nothing behind, not even an unfinished cluster upload."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

from tests.walrus.helpers import code_and_status, keys_of, s3_error
from tests.walrus.test_multipart import multipart_etag, upload_parts

MIB = 1024 * 1024
BIG = os.urandom(20 * MIB + 12345)  # three parts of 8 MiB on the cluster, the last one short


def test_large_put_keeps_walrus_etag_and_checksum_and_reads_back_in_ranges(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    before = set(walrus.stored_blobs())
    put = s3.put_object(Bucket=bucket, Key="big", Body=BIG, ChecksumAlgorithm="CRC32")
    crc = base64.b64encode(zlib.crc32(BIG).to_bytes(4, "big")).decode()
    assert put["ETag"] == f'"{hashlib.md5(BIG).hexdigest()}"' and put["ChecksumCRC32"] == crc
    assert len(set(walrus.stored_blobs()) - before) == 1  # one blob, whatever its cluster parts
    got = s3.get_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert got["ETag"] == put["ETag"] and got["ChecksumCRC32"] == crc
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(BIG).digest()
    # ranges across the boundaries of the cluster's parts, and the last bytes
    for start, end in [(8 * MIB - 5, 8 * MIB + 4), (3, 16 * MIB + 9), (len(BIG) - 7, len(BIG) - 1)]:
        span = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{end}")
        assert span["ContentRange"] == f"bytes {start}-{end}/{len(BIG)}"
        assert span["Body"].read() == BIG[start:end + 1]
    assert walrus.unfinished_blobs() == []


def test_large_multipart_parts_read_back_by_part_and_range(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    parts = [BIG[:9 * MIB], BIG[9 * MIB:18 * MIB], BIG[18 * MIB:]]
    upload_id, done = upload_parts(s3, bucket, "parts", parts)
    result = s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload_id,
                                          MultipartUpload={"Parts": done})
    assert result["ETag"] == multipart_etag(parts)
    second = s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert second["PartsCount"] == 3 and second["Body"].read() == parts[1]
    span = s3.get_object(Bucket=bucket, Key="parts", Range=f"bytes={9 * MIB - 2}-{18 * MIB + 1}")
    assert span["Body"].read() == BIG[9 * MIB - 2:18 * MIB + 2]
    # a copy streams through Walrus and keeps the source's bytes
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "parts"})
    copied = s3.get_object(Bucket=bucket, Key="copy")
    assert copied["ETag"] == f'"{hashlib.md5(BIG).hexdigest()}"'
    assert hashlib.sha256(copied["Body"].read()).digest() == hashlib.sha256(BIG).digest()


def test_refused_large_upload_stores_nothing(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    before = sorted(walrus.stored_blobs())
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    error = s3_error(s3.put_object, Bucket=bucket, Key="refused", Body=BIG, ContentMD5=wrong_md5)
    assert code_and_status(error) == ("BadDigest", 400)
    assert keys_of(s3, bucket) == []
    assert sorted(walrus.stored_blobs()) == before and walrus.unfinished_blobs() == []
