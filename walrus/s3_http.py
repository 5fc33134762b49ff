"""The cluster's hot requests without botocore's client (walrus/s3_blobs.py): a GET of a blob
(whole or a range), the PUT of a body Walrus holds whole, the DELETE of one blob. Each is one
SigV4-signed request (services/auth/sigv4.py, payload UNSIGNED as with the client) on a pooled
urllib3 connection. Through botocore's client the same request costs several times the CPU
(its event hooks, the request and response models, the parser): a 1 KiB GET spent about two
thirds of its time in Walrus's process there. Everything else (multipart, streamed PUTs,
listings, batch deletes) stays with botocore's client (walrus/s3_cluster.py): rare, or large
enough that its cost does not show.

Errors come back as botocore's ClientError with the cluster's code, as from the client, so
callers handle both alike. A request is retried on a broken connection and on the answers S3
says to retry (500, 502, 503, 504), as botocore's standard mode does: each of these requests
may be sent again (its body is bytes in hand)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import urllib3
from botocore.exceptions import ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from services.auth.sigv4 import UNSIGNED_PAYLOAD, sign_v4_headers
from walrus.s3_cluster import S3Location

ATTEMPTS = 4
RETRY_STATUS = frozenset((500, 502, 503, 504))
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


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
        path = self._prefix + key
        for attempt in range(1, ATTEMPTS + 1):
            headers = {"host": self._host, "x-amz-content-sha256": UNSIGNED_PAYLOAD, **extra}
            location = self._location
            headers.update(sign_v4_headers(
                method=method, canonical_uri=path, raw_query="", headers=headers,
                access_key=location.access_key, secret_key=location.secret_key,
                region=location.region, service="s3", payload_hash=UNSIGNED_PAYLOAD,
                now=datetime.now(timezone.utc)))
            try:
                response = self._pool.urlopen(method, path, body=body, headers=headers,
                                              retries=False, redirect=False,
                                              preload_content=False, decode_content=False)
            except Urllib3Error:
                if attempt == ATTEMPTS:
                    raise
                continue  # a kept-alive connection the cluster had closed, most often
            if response.status < 300:
                if not stream:
                    response.read()
                    response.release_conn()
                return response
            answer = response.read()
            response.release_conn()
            if response.status in RETRY_STATUS and attempt < ATTEMPTS:
                time.sleep(0.05 * 2 ** attempt)
                continue
            raise _error(method, response.status, answer)
        raise AssertionError("unreachable")


def _error(method: str, status: int, answer: bytes) -> ClientError:
    code = _CODE.search(answer)
    message = _MESSAGE.search(answer)
    name = code.group(1).decode() if code else str(status)
    return ClientError({"Error": {"Code": name,
                                  "Message": message.group(1).decode() if message else ""},
                        "ResponseMetadata": {"HTTPStatusCode": status}},
                       f"{method} (walrus/s3_http.py)")
