"""Walrus's internal image API: bundles decrypted once, on first use, for the nodes.

Routes (on Walrus, signed internal calls):
  GET  /internal/images/{bucket}/{manifest key}   -> the decrypted image, streamed, with
        Content-Length and `x-eucasim-image-sha256`; 404 no such manifest; 422 the bundle is
        unusable ({"detail": reason, "code": Bundle.*}); the failure is remembered.
  POST /internal/images/prepare   PrepareImage    -> PreparedImage (decrypts now if needed;
        a failed bundle answers 200 with state "failed" and its reason)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

IMAGE_ROUTE = "/internal/images/{bucket}/{key}"
PREPARE_ROUTE = "/internal/images/prepare"
SHA256_HEADER = "x-eucasim-image-sha256"


class PrepareImage(BaseModel):
    bucket: str
    manifest_key: str


class PreparedImage(BaseModel):
    state: Literal["available", "failed"]
    size_bytes: int | None = None
    sha256: str | None = None
    code: str | None = None      # Bundle.PartCorrupt, Bundle.SignatureInvalid, …
    reason: str | None = None


TINY_IMAGE_ROUTE = "/internal/images/tiny"  # on the CLC: POST -> TinyImage (idempotent)


class TinyImage(BaseModel):
    image_id: str
