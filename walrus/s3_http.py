"""The cluster's hot requests without botocore's client (walrus/s3_blobs.py): a GET of a blob
(whole or a range), the PUT of a body Walrus holds whole, the DELETE of one blob, each one
signed request (services/s3_signed.py: signing, retries, errors as botocore's ClientError).
Through botocore's client a 1 KiB GET spent about two thirds of its time in Walrus's process.
Everything else (multipart, streamed PUTs, listings, batch deletes) stays with botocore's
client (walrus/s3_cluster.py): rare, or large enough that its cost does not show."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import urllib3

from services.s3_signed import SigningKey, send_signed
from walrus.s3_cluster import S3Location

ATTEMPTS = 4


class ClusterBody:
    """A GET's body as the callers read botocore's StreamingBody: read(), iter_chunks(),
    close(). Read to its end, the connection goes back to the pool; closed before, it is
    closed (a half-read answer must not be the next request's)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._done = False

    def read(self, amount: int | None = None) -> bytes:
        data = self._response.read(amount, decode_content=False)
        if amount is None or not data:
            self._finish()
        return data

    def iter_chunks(self, chunk: int) -> Iterator[bytes]:
        while True:
            data = self._response.read(chunk, decode_content=False)
            if not data:
                self._finish()
                return
            yield data

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._response.release_conn()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._response.close()
            self._response.release_conn()

    def __enter__(self) -> ClusterBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClusterHTTP:
    def __init__(self, location: S3Location, connections: int) -> None:
        url = urllib3.util.parse_url(location.endpoint)
        self._location = location
        self._host = url.netloc or ""
        self._prefix = f"{(url.path or '').rstrip('/')}/{location.bucket}/"
        self._pool = urllib3.connection_from_url(
            location.endpoint, maxsize=connections, block=False,
            timeout=urllib3.Timeout(connect=10, read=120))

    def get(self, key: str, first: int | None = None, last: int | None = None) -> ClusterBody:
        extra = {} if first is None else {"range": f"bytes={first}-{last}"}
        response = self._send("GET", key, None, extra, stream=True)
        return ClusterBody(response)

    def put(self, key: str, body: bytes) -> str:
        response = self._send("PUT", key, body, {"content-length": str(len(body))})
        return str(response.headers.get("etag", ""))

    def delete(self, key: str) -> None:
        self._send("DELETE", key, None, {})

    def _send(self, method: str, key: str, body: bytes | None, extra: Mapping[str, str],
              stream: bool = False) -> Any:
        location = self._location
        return send_signed(self._pool, self._host, SigningKey(location.access_key,
                           location.secret_key, location.region), method, self._prefix + key,
                           body, extra, attempts=ATTEMPTS, stream=stream,
                           origin="walrus/s3_http.py")
