"""One SigV4-signed S3 request on a pooled urllib3 connection, without botocore's client: what
Walrus's hop to its cluster (walrus/s3_http.py) and the SC's snapshot requests to Walrus
(sc/snapshot_http.py) share. Through botocore's client each such request cost several times
the CPU (its event hooks, the request and response models, the parser).

The payload is UNSIGNED, as the client sent it. A request is sent again on a broken connection
and on the answers S3 says to retry (500, 502, 503, 504), as botocore's standard mode does:
the body is in hand. An error answer comes back as botocore's ClientError with S3's code, as
from the client, so callers handle both alike."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import urllib3
from botocore.exceptions import ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from services.auth.sigv4 import UNSIGNED_PAYLOAD, sign_v4_headers

RETRY_STATUS = frozenset((500, 502, 503, 504))
# S3's error document is fixed and flat: its two fields are read without an XML parser.
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
Body = bytes | bytearray | memoryview


@dataclass(frozen=True)
class SigningKey:
    access_key: str
    secret_key: str
    region: str


def send_signed(pool: urllib3.HTTPConnectionPool, host: str, key: SigningKey, method: str,
                path: str, body: Body | None, extra: Mapping[str, str], *, attempts: int,
                stream: bool, origin: str) -> Any:
    """The answer of one request (a urllib3 response: read whole and its connection back in
    the pool unless `stream`). A broken connection on the last attempt raises urllib3's error;
    an error answer, a ClientError naming `origin`."""
    for attempt in range(1, attempts + 1):
        headers = {"host": host, "x-amz-content-sha256": UNSIGNED_PAYLOAD, **extra}
        headers.update(sign_v4_headers(
            method=method, canonical_uri=path, raw_query="", headers=headers,
            access_key=key.access_key, secret_key=key.secret_key, region=key.region,
            service="s3", payload_hash=UNSIGNED_PAYLOAD, now=datetime.now(timezone.utc)))
        try:
            response = pool.urlopen(method, path, body=body, headers=headers, retries=False,
                                    redirect=False, preload_content=not stream,
                                    decode_content=False)
        except Urllib3Error:
            if attempt == attempts:
                raise
            continue  # most often a kept-alive connection the server had closed
        if response.status < 300:
            return response
        answer = response.read() if stream else response.data
        response.release_conn()
        if response.status in RETRY_STATUS and attempt < attempts:
            time.sleep(0.05 * 2 ** attempt)
            continue
        raise s3_error(method, response.status, answer, origin)
    raise AssertionError("unreachable")


def s3_error(method: str, status: int, answer: bytes, origin: str) -> ClientError:
    code = _CODE.search(answer)
    message = _MESSAGE.search(answer)
    name = code.group(1).decode() if code else str(status)
    return ClientError({"Error": {"Code": name,
                                  "Message": message.group(1).decode() if message else ""},
                        "ResponseMetadata": {"HTTPStatusCode": status}},
                       f"{method} ({origin})")
