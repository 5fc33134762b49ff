"""Upload bodies built by hand, byte by byte, for what real clients rarely send wrong:
aws-chunked framing with trailing checksums, signed chunks, payload hashes, lengths."""

from __future__ import annotations

import base64
import hashlib
import socket
import zlib
from datetime import datetime, timezone
from urllib.parse import urlparse

import crc32c
import httpx
import pytest

from services.auth import Identity, chunk_signature, sign_v4_headers, trailer_signature
from services.auth.sigv4 import Credential, signing_key
from tests.walrus.conftest import ALICE
from tests.support.waiting import wait_for
from tests.walrus.helpers import keys_of

REGION = "us-east-1"


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class Signer:
    """Signs one hand-made request the way boto3 would, and its chunks after it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.now = datetime.now(timezone.utc)

    def headers(self, method: str, path: str, payload_hash: str,
                extra: dict[str, str]) -> dict[str, str]:
        host = urlparse(self.url).netloc
        signed = {"host": host, "x-amz-content-sha256": payload_hash, **extra}
        added = sign_v4_headers(method=method, canonical_uri=path, raw_query="", headers=signed,
                                access_key=ALICE.access_key, secret_key=ALICE.secret_key,
                                region=REGION, service="s3", payload_hash=payload_hash,
                                now=self.now)
        self.seed = added["authorization"].rsplit("Signature=", 1)[1]
        amz_date = added["x-amz-date"]
        credential = Credential(ALICE.access_key, amz_date[:8], REGION, "s3")
        self.identity = Identity(access_key=ALICE.access_key, scheme="v4-header", region=REGION,
                                 service="s3", amz_date=amz_date,
                                 signing_key=signing_key(ALICE.secret_key, credential),
                                 seed_signature=self.seed, scope=credential.scope)
        return {**signed, **added}

    def signed_chunks(self, chunks: list[bytes], trailer: bytes | None = None) -> bytes:
        out, previous = b"", self.seed
        for chunk in [*chunks, b""]:
            previous = chunk_signature(self.identity, previous, chunk)
            out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
        if trailer is None:
            return out
        out = out[:-2]  # the trailer follows the final chunk header directly
        signature = trailer_signature(self.identity, previous, trailer)
        return out + trailer.replace(b"\n", b"\r\n") + \
            f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()


def unsigned_chunks(chunks: list[bytes], trailer: str) -> bytes:
    out = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks)
    return out + b"0\r\n" + trailer.encode() + b"\r\n\r\n"


def put(walrus, bucket: str, key: str, body: bytes, payload_hash: str,  # type: ignore[no-untyped-def]
        extra: dict[str, str]) -> httpx.Response:
    path = f"/{bucket}/{key}"
    headers = Signer(walrus.url).headers("PUT", path, payload_hash, extra)
    return httpx.put(f"{walrus.url}{path}", content=body, headers=headers)


def error_code(answer: httpx.Response) -> str:
    return answer.text.split("<Code>")[1].split("</Code>")[0]


DATA = [b"a" * 70000, b"b" * 1000]
WHOLE = b"".join(DATA)
TRAILER_HEADERS = {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
                   "x-amz-decoded-content-length": str(len(WHOLE))}


def test_unsigned_payload_trailer_is_decoded_and_checked(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    body = unsigned_chunks(DATA, f"x-amz-checksum-crc32:{crc32_b64(WHOLE)}")
    answer = put(walrus, bucket, "chunked", body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                 TRAILER_HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-amz-checksum-crc32"] == crc32_b64(WHOLE)
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == WHOLE
    assert "ContentEncoding" not in got  # aws-chunked was the transfer, not the object


def test_wrong_trailer_checksum_is_bad_digest_and_stores_nothing(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    before = len(walrus.stored_blobs())
    body = unsigned_chunks(DATA, f"x-amz-checksum-crc32:{crc32_b64(b'other')}")
    answer = put(walrus, bucket, "bad", body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", TRAILER_HEADERS)
    assert (answer.status_code, error_code(answer)) == (400, "BadDigest")
    assert keys_of(s3, bucket) == [] and len(walrus.stored_blobs()) == before
    assert walrus.unfinished_blobs() == []


def test_missing_trailer_is_refused(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    body = unsigned_chunks(DATA, "")[:-2]
    answer = put(walrus, bucket, "bad", body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", TRAILER_HEADERS)
    assert answer.status_code == 400 and error_code(answer) == "MalformedTrailerError"
    assert keys_of(s3, bucket) == []


@pytest.mark.parametrize("cut", [10, 70010, -30])
def test_truncated_chunked_body_is_incomplete(walrus, s3, bucket, cut: int):  # type: ignore[no-untyped-def]
    body = unsigned_chunks(DATA, f"x-amz-checksum-crc32:{crc32_b64(WHOLE)}")[:cut]
    answer = put(walrus, bucket, "cut", body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", TRAILER_HEADERS)
    assert (answer.status_code, error_code(answer)) == (400, "IncompleteBody")
    assert keys_of(s3, bucket) == []


def test_decoded_length_must_match(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    body = unsigned_chunks(DATA, f"x-amz-checksum-crc32:{crc32_b64(WHOLE)}")
    headers = {**TRAILER_HEADERS, "x-amz-decoded-content-length": str(len(WHOLE) + 1)}
    answer = put(walrus, bucket, "len", body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers)
    assert (answer.status_code, error_code(answer)) == (400, "IncompleteBody")
    assert keys_of(s3, bucket) == []


def test_signed_chunks(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    headers = {"content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(WHOLE))}
    path = f"/{bucket}/signed"
    signer = Signer(walrus.url)
    signed = signer.headers("PUT", path, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", headers)
    answer = httpx.put(f"{walrus.url}{path}", content=signer.signed_chunks(DATA), headers=signed)
    assert answer.status_code == 200, answer.text
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == WHOLE


def test_tampered_signed_chunk_is_refused(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    headers = {"content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(WHOLE))}
    path = f"/{bucket}/tampered"
    signer = Signer(walrus.url)
    signed = signer.headers("PUT", path, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", headers)
    body = signer.signed_chunks(DATA).replace(b"b" * 10, b"c" * 10, 1)
    answer = httpx.put(f"{walrus.url}{path}", content=body, headers=signed)
    assert (answer.status_code, error_code(answer)) == (403, "SignatureDoesNotMatch")
    assert keys_of(s3, bucket) == []


def test_signed_chunks_with_signed_trailer(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    headers = {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
               "x-amz-decoded-content-length": str(len(WHOLE))}
    path = f"/{bucket}/trailer"
    signer = Signer(walrus.url)
    signed = signer.headers("PUT", path, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", headers)
    trailer = f"x-amz-checksum-crc32:{crc32_b64(WHOLE)}\n".encode()
    answer = httpx.put(f"{walrus.url}{path}", content=signer.signed_chunks(DATA, trailer),
                       headers=signed)
    assert answer.status_code == 200, answer.text
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == WHOLE
    # the same body with a forged trailer signature is refused
    forged = signer.signed_chunks(DATA, trailer).replace(b"x-amz-trailer-signature:",
                                                         b"x-amz-trailer-signature:0")
    answer = httpx.put(f"{walrus.url}/{bucket}/forged", content=forged, headers={
        **signer.headers("PUT", f"/{bucket}/forged", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                         headers)})
    assert answer.status_code == 403
    assert keys_of(s3, bucket) == ["trailer"]


def test_payload_hash_mismatch(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    claimed = hashlib.sha256(b"something else").hexdigest()
    answer = put(walrus, bucket, "hash", b"actual body", claimed, {})
    assert (answer.status_code, error_code(answer)) == (400, "XAmzContentSHA256Mismatch")
    assert keys_of(s3, bucket) == []
    good = put(walrus, bucket, "hash", b"actual body", hashlib.sha256(b"actual body").hexdigest(), {})
    assert good.status_code == 200


def test_unsigned_payload(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    answer = put(walrus, bucket, "u", b"no hash", "UNSIGNED-PAYLOAD", {})
    assert answer.status_code == 200
    assert s3.get_object(Bucket=bucket, Key="u")["Body"].read() == b"no hash"


# A plain body of several batches (walrus/bodies.py BATCH): its MD5 and the rest of its sums
# and its write go through two workers at once, a batch at a time.
LARGE = bytes(range(256)) * (5 * 4096 + 77)  # 5 MiB and a bit: five full batches and a rest


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode()


def test_a_plain_body_of_many_batches_keeps_its_etag_and_checksums(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    answer = put(walrus, bucket, "large", LARGE, hashlib.sha256(LARGE).hexdigest(),
                 {"x-amz-checksum-crc32c": crc32c_b64(LARGE)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] == f'"{hashlib.md5(LARGE).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="large", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32C"] == crc32c_b64(LARGE) and got["Body"].read() == LARGE


@pytest.mark.parametrize("claim,code", [
    ({"x-amz-checksum-crc32c": crc32c_b64(LARGE[:-1] + b"?")}, "BadDigest"),
    ({"content-md5": base64.b64encode(hashlib.md5(LARGE[1:]).digest()).decode()}, "BadDigest"),
    ({"x-amz-content-sha256": hashlib.sha256(LARGE[1:]).hexdigest()}, "XAmzContentSHA256Mismatch"),
])
def test_a_wrong_claim_about_a_plain_body_of_many_batches_stores_nothing(  # type: ignore[no-untyped-def]
        walrus, s3, bucket, claim: dict[str, str], code: str):
    before = sorted(walrus.stored_blobs())
    headers = dict(claim)  # the parameter is shared by every backend's run
    payload_hash = headers.pop("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    answer = put(walrus, bucket, "wrong", LARGE, payload_hash, headers)
    assert (answer.status_code, error_code(answer)) == (400, code)
    assert keys_of(s3, bucket) == []
    assert sorted(walrus.stored_blobs()) == before and walrus.unfinished_blobs() == []


def test_a_plain_body_cut_after_several_batches_stores_nothing(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    before = sorted(walrus.stored_blobs())
    path = f"/{bucket}/cut-large"
    headers = Signer(walrus.url).headers("PUT", path, "UNSIGNED-PAYLOAD",
                                         {"content-length": str(len(LARGE))})
    url = urlparse(walrus.url)
    with socket.create_connection((url.hostname, url.port)) as conn:
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.sendall(head.encode() + b"\r\n" + LARGE[:3 * 1024 * 1024 + 5])
    # Walrus sees the connection close while its workers may still be writing a batch: the
    # unfinished blob is removed once they are done, and no key appears.
    wait_for(lambda: walrus.unfinished_blobs() == [], 20, "the cut upload's blob to be removed")
    assert keys_of(s3, bucket) == [] and sorted(walrus.stored_blobs()) == before
