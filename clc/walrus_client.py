"""The CLC's view of Walrus: what image behaviour may ask of it (`ManifestSource`,
`WalrusClient`), and `HttpWalrus`, which asks the real one — manifests over S3 with the cloud
admin's key, image preparation over Walrus's signed internal API.

Handlers reach it as `ctx.walrus`; tests hand the endpoint a fake with the same two methods.
Failures leave here as the two exceptions below, never as botocore's or httpx's."""

from __future__ import annotations

import threading
from typing import Any, Protocol

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from services.bundles.upload import s3_client
from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.messages.identity import AccessKeyInfo
from services.messages.images import PREPARE_ROUTE, PreparedImage, PrepareImage


class ManifestUnreadable(Exception):
    """Walrus answered, but not with the manifest (no such bucket or key, access denied)."""


class WalrusUnavailable(Exception):
    """Walrus did not answer, or answered with a server error."""


class ManifestSource(Protocol):
    def read_manifest(self, bucket: str, key: str) -> bytes:
        """The manifest's bytes; ManifestUnreadable or WalrusUnavailable."""
        ...


class WalrusClient(ManifestSource, Protocol):
    def prepare_image(self, bucket: str, manifest_key: str) -> PreparedImage:
        """Ask Walrus to decrypt the bundle now, if it has not yet. A bundle Walrus cannot use
        answers state "failed" with its reason; a missing manifest is ManifestUnreadable."""
        ...


class S3Manifests:
    """A ManifestSource over a boto3 S3 client (whose key decides which buckets it may read)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def _client(self) -> Any:
        return self._s3

    def read_manifest(self, bucket: str, key: str) -> bytes:
        try:
            return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise ManifestUnreadable(f"cannot read {bucket}/{key} from Walrus ({code})") from None
        except BotoCoreError as exc:
            raise WalrusUnavailable(f"Walrus cannot be reached to read {bucket}/{key}: {exc}") from None


class HttpWalrus(S3Manifests):
    """The real Walrus of `config`, as the account of `key` (the cloud admin's, which may read
    every bucket). One per CLC process: it holds the S3 client and the internal client."""

    def __init__(self, config: CloudConfig, key: AccessKeyInfo,
                 internal: InternalClient | None = None) -> None:
        super().__init__(None)
        self._url = config.service_url("walrus")
        self._key = key
        self._region = config.REGION
        self._lock = threading.Lock()
        self._internal = internal or InternalClient(self._url, config.CLOUD_SECRET)

    def _client(self) -> Any:
        # Built on first use, not at start (Walrus may start after the CLC), and kept: building
        # a boto3 client costs more than the manifest read itself, and it is thread-safe.
        with self._lock:
            if self._s3 is None:
                self._s3 = s3_client(self._url, self._key, self._region)
            return self._s3

    def prepare_image(self, bucket: str, manifest_key: str) -> PreparedImage:
        try:
            return self._internal.call(  # type: ignore[no-any-return]
                "POST", PREPARE_ROUTE, PrepareImage(bucket=bucket, manifest_key=manifest_key),
                PreparedImage)
        except InternalCallError as exc:
            if exc.status == 404:
                raise ManifestUnreadable(f"Walrus has no manifest {bucket}/{manifest_key}") from None
            if exc.status >= 500:
                raise WalrusUnavailable(f"Walrus could not prepare {bucket}/{manifest_key}: {exc}") from None
            raise  # any other refusal is a bug (a wrong secret, a changed message): let it show
        except (httpx.HTTPError, OSError) as exc:
            raise WalrusUnavailable(f"Walrus cannot be reached: {exc}") from None

    def close(self) -> None:
        self._internal.close()
