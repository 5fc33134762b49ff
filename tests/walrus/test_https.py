"""Over HTTPS boto3 and the AWS CLI send uploads as aws-chunked bodies with a trailing CRC32:
the real clients exercise the decoder here, not hand-made bodies."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path

import httpx
from cryptography import x509

from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE
from tests.walrus.helpers import code_and_status, keys_of, s3_error


def capture_headers(client) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    seen: list[dict[str, str]] = []
    def record(request, **_: object) -> None:  # type: ignore[no-untyped-def]
        seen.append({k.lower(): v.decode() if isinstance(v, bytes) else v
                     for k, v in request.headers.items()})

    client.meta.events.register("before-send.s3.*", record)
    return seen


def test_certificate_comes_from_the_cloud_ca(walrus_tls):  # type: ignore[no-untyped-def]
    context = ssl.create_default_context(cafile=walrus_tls.ca_bundle)
    answer = httpx.get(f"{walrus_tls.url}/internal/health", verify=context)
    assert answer.status_code == 200
    cert = x509.load_pem_x509_certificate((walrus_tls.home / "tls" / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "*.localhost" in names.get_values_for_type(x509.DNSName)
    try:
        httpx.get(f"{walrus_tls.url}/internal/health")  # the system store does not know our CA
        raise AssertionError("an unknown CA was trusted")
    except httpx.ConnectError:
        pass


def test_boto3_put_over_https_is_aws_chunked_with_trailer(walrus_tls):  # type: ignore[no-untyped-def]
    s3 = walrus_tls.client(ALICE)
    s3.create_bucket(Bucket="tls-bucket")
    seen = capture_headers(s3)
    body = os.urandom(3 * 1024 * 1024 + 17)
    put = s3.put_object(Bucket="tls-bucket", Key="chunked", Body=body)
    sent = seen[-1]
    assert sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert sent["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert put["ChecksumCRC32"]
    got = s3.get_object(Bucket="tls-bucket", Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    empty = s3.put_object(Bucket="tls-bucket", Key="empty", Body=b"")
    assert empty["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


def test_boto3_multipart_over_https(walrus_tls):  # type: ignore[no-untyped-def]
    s3 = walrus_tls.client(ALICE)
    s3.create_bucket(Bucket="tls-multipart")
    data = os.urandom(12 * 1024 * 1024)
    path = walrus_tls.home / "upload.bin"
    path.write_bytes(data)
    from boto3.s3.transfer import TransferConfig

    s3.upload_file(str(path), "tls-multipart", "big",
                   Config=TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                         multipart_chunksize=5 * 1024 * 1024))
    assert s3.head_object(Bucket="tls-multipart", Key="big")["ETag"].endswith('-3"')
    target = walrus_tls.home / "download.bin"
    s3.download_file("tls-multipart", "big", str(target),
                     Config=TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                           multipart_chunksize=5 * 1024 * 1024))
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_errors_over_https(walrus_tls):  # type: ignore[no-untyped-def]
    s3 = walrus_tls.client(ALICE)
    s3.create_bucket(Bucket="tls-errors")
    error = s3_error(s3.put_object, Bucket="tls-errors", Key="k" * 1025, Body=b"x")
    assert code_and_status(error) == ("KeyTooLongError", 400)
    import base64

    wrong = base64.b64encode(hashlib.md5(b"not it").digest()).decode()
    error = s3_error(s3.put_object, Bucket="tls-errors", Key="m", Body=b"data", ContentMD5=wrong)
    assert code_and_status(error) == ("BadDigest", 400)
    assert keys_of(s3, "tls-errors") == []


def test_aws_cli_over_https(walrus_tls, tmp_path: Path):  # type: ignore[no-untyped-def]
    s3 = walrus_tls.client(ALICE)
    aws(walrus_tls, ALICE, "s3", "mb", "s3://tls-cli")
    source = tmp_path / "f.bin"
    data = os.urandom(17 * 1024 * 1024)
    source.write_bytes(data)
    aws(walrus_tls, ALICE, "s3", "cp", str(source), "s3://tls-cli/f.bin")
    assert s3.head_object(Bucket="tls-cli", Key="f.bin")["ETag"].endswith('-3"')
    aws(walrus_tls, ALICE, "s3", "cp", "s3://tls-cli/f.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    small = tmp_path / "small.txt"
    small.write_text("small over https")
    aws(walrus_tls, ALICE, "s3", "cp", str(small), "s3://tls-cli/small.txt")
    assert s3.get_object(Bucket="tls-cli", Key="small.txt")["Body"].read() == b"small over https"
