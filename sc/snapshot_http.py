"""A snapshot's requests to Walrus without botocore's client: its bucket made, each part PUT
with its CRC32C (which Walrus checks on receipt) and the manifest after them, and the GETs of
a restore, each one signed request (services/s3_signed.py: signing, retries, errors as
botocore's ClientError), a body handed to the socket in one `sendall`.

Through botocore's client every request cost the SC a millisecond or more of CPU beside its
bytes, and its first use in a process hundreds of milliseconds more to build the client: the
first snapshot after a start paid that on its own time. Only deleting a snapshot (a listing
and a batch delete, rare) stays with the client (sc/snapstore.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import urllib3
from botocore.exceptions import ClientError, EndpointConnectionError
from urllib3.exceptions import HTTPError as Urllib3Error

from services.messages.identity import AccessKeyInfo
from services.s3_signed import Body, SigningKey, send_signed

ATTEMPTS = 3


class SnapshotHTTP:
    """Buckets and whole objects in Walrus, as the cloud admin (whose key is asked for at the
    first request: the CLC writes it at its first start)."""

    def __init__(self, endpoint: str, key: Callable[[], AccessKeyInfo], region: str,
                 connections: int, ca_certs: str | None = None) -> None:
        url = urllib3.util.parse_url(endpoint)
        self._host = url.netloc or ""
        self._prefix = (url.path or "").rstrip("/") + "/"
        self._key_source = key
        self._key: AccessKeyInfo | None = None
        self._lock = threading.Lock()
        self._region = region
        # HTTPS (PUBLIC_HTTPS): the cloud's CA, which boto3 finds in AWS_CA_BUNDLE.
        tls: dict[str, Any] = {"ca_certs": ca_certs} if ca_certs and url.scheme == "https" else {}
        self._pool = urllib3.connection_from_url(
            endpoint, maxsize=connections, block=False,
            timeout=urllib3.Timeout(connect=10, read=60), **tls)  # read: botocore's default

    def create_bucket(self, bucket: str) -> None:
        """Make `bucket`; one this account made before (an upload resumed) is no error."""
        try:
            self._send("PUT", bucket, None, b"", {"content-length": "0"})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise

    def put(self, bucket: str, key: str, body: Body, crc32c: str) -> None:
        """Store `body` as bucket/key; Walrus refuses it (BadDigest) unless its CRC32C is
        `crc32c` (base64, as x-amz-checksum-crc32c)."""
        self._send("PUT", bucket, key, body, {"content-length": str(len(body)),
                                              "x-amz-checksum-crc32c": crc32c})

    def get(self, bucket: str, key: str) -> bytes:
        return self._send("GET", bucket, key, None, {})

    def _admin(self) -> AccessKeyInfo:
        with self._lock:
            if self._key is None:
                self._key = self._key_source()
            return self._key

    def _send(self, method: str, bucket: str, key: str | None, body: Body | None,
              extra: Mapping[str, str]) -> bytes:
        admin = self._admin()
        path = self._prefix + quote(bucket, safe="")
        if key is not None:
            path += "/" + quote(key, safe="/~")
        try:
            response = send_signed(self._pool, self._host,
                                   SigningKey(admin.access_key, admin.secret_key, self._region),
                                   method, path, body, extra, attempts=ATTEMPTS, stream=False,
                                   origin="sc/snapshot_http.py")
        except Urllib3Error as exc:
            # botocore's own error for it, so that callers catch one family
            raise EndpointConnectionError(endpoint_url=self._pool.host, error=exc) from exc
        answer: bytes = response.data
        return answer
