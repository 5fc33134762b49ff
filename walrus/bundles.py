"""Walrus turns a bundle back into an image, once, on first use, and serves it to the nodes.

The manifest's signature is checked against the certificates the cloud issued to the
manifest's account, the AES key recovered with the cloud's private key, each part's SHA-1
checked, and the image decrypted to `walrus/images/` under EUCASIM_HOME. The result (or the
reason it failed) is remembered per manifest version (its ETag), so a thousand nodes asking at
once cost one decryption, and a broken bundle fails with its reason rather than failing a node.

Mount with `app.include_router(images_router(walrus, app.state.internal_auth))`: its routes
are under /internal/, which the S3 front door hands to FastAPI."""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response

from services import pki
from services.bundles import BundleError, bundle_keys, parse_manifest, unbundle, verify_manifest
from services.messages.images import (IMAGE_ROUTE, PREPARE_ROUTE, SHA256_HEADER, PreparedImage,
                                      PrepareImage)
from walrus import catalog

if TYPE_CHECKING:
    from walrus.app import Walrus

log = logging.getLogger("walrus.bundles")


class ManifestMissing(Exception):
    pass


def images_dir(home: Path) -> Path:
    return home / "walrus" / "images"


class BundleDecrypter:
    def __init__(self, walrus: Walrus) -> None:
        self._walrus = walrus
        self._folder = images_dir(walrus.config.EUCASIM_HOME)
        self._folder.mkdir(parents=True, exist_ok=True)
        for leftover in self._folder.glob("*.partial"):  # a decryption cut short by a crash
            leftover.unlink(missing_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _object(self, bucket: str, key: str) -> tuple[str, list[list[Any]], int]:
        with self._walrus.db.session() as session:
            row = catalog.get_object(session, bucket, key)
            if row is None or row.delete_marker:
                raise FileNotFoundError(f"{bucket}/{key}")
            return row.etag, [list(s) for s in row.segments], row.size

    def _read(self, bucket: str, key: str) -> Iterator[bytes]:
        _, segments, size = self._object(bucket, key)
        if size:
            yield from self._walrus.blobs.iter_range(segments, 0, size - 1)

    def _lock(self, cache_key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(cache_key, threading.Lock())

    def _version(self, bucket: str, manifest_key: str) -> tuple[str, bytes]:
        """Names one version of a bundle: the manifest's ETag and its parts' ETags, so a part
        uploaded again (say, to repair a corrupt one) gets a fresh decryption. Returns the
        manifest read for it too, so the decryption uses the very version it is named by."""
        try:
            etag, _, _ = self._object(bucket, manifest_key)
            data = b"".join(self._read(bucket, manifest_key))
        except FileNotFoundError:
            raise ManifestMissing(f"no manifest {bucket}/{manifest_key}") from None
        version = [f"{bucket}/{manifest_key}", etag]
        try:
            manifest = parse_manifest(data)
        except BundleError:
            manifest = None
        folder = posixpath.dirname(manifest_key)
        for filename in manifest.part_filenames() if manifest else []:
            try:
                version.append(self._object(bucket, posixpath.join(folder, filename))[0])
            except FileNotFoundError:
                version.append("missing")
        return hashlib.sha256("\n".join(version).encode()).hexdigest()[:40], data

    def prepare(self, bucket: str, manifest_key: str) -> PreparedImage:
        """The image's state, decrypting it first if this version of the bundle is new."""
        return self._prepare(bucket, manifest_key)[0]

    def _prepare(self, bucket: str, manifest_key: str) -> tuple[PreparedImage, Path]:
        cache_key, manifest_data = self._version(bucket, manifest_key)
        status_path = self._folder / f"{cache_key}.json"
        image_path = self._folder / f"{cache_key}.img"
        with self._lock(cache_key):
            if status_path.is_file():
                return PreparedImage.model_validate_json(status_path.read_text()), image_path
            status = self._decrypt(bucket, manifest_key, manifest_data, image_path)
            status_path.write_text(status.model_dump_json())
            return status, image_path

    def ready(self, bucket: str, manifest_key: str) -> tuple[PreparedImage, Path | None]:
        status, path = self._prepare(bucket, manifest_key)
        return status, (path if status.state == "available" else None)

    def _decrypt(self, bucket: str, manifest_key: str, manifest_data: bytes,
                 target: Path) -> PreparedImage:
        home = self._walrus.config.EUCASIM_HOME
        folder = posixpath.dirname(manifest_key)
        partial = target.with_suffix(".partial")
        record = self._walrus.recorder.record
        try:
            manifest = parse_manifest(manifest_data)
            verify_manifest(manifest, pki.account_certificates(home, manifest.account_id))
            key_hex, iv_hex = bundle_keys(manifest, pki.ensure_cloud_ca(home).private_key())

            def open_part(filename: str) -> Iterator[bytes]:
                return self._read(bucket, posixpath.join(folder, filename))

            with open(partial, "wb") as out:
                image = unbundle(manifest, key_hex, iv_hex, open_part, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BundleError as exc:
            partial.unlink(missing_ok=True)
            record("decided", f"bundle {bucket}/{manifest_key} failed", reason=exc.reason)
            return PreparedImage(state="failed", code=exc.code, reason=exc.reason)
        except FileNotFoundError as exc:
            partial.unlink(missing_ok=True)
            reason = f"a part of the bundle is missing from bucket {bucket}: {exc}"
            return PreparedImage(state="failed", code="Bundle.PartMissing", reason=reason)
        record("decided", f"bundle {bucket}/{manifest_key} decrypted",
               size=image.size, sha256=image.sha256)
        return PreparedImage(state="available", size_bytes=image.size, sha256=image.sha256)


def images_router(walrus: Walrus, internal_auth: Any) -> APIRouter:
    decrypter = BundleDecrypter(walrus)
    router = APIRouter(dependencies=[Depends(internal_auth)])

    @router.post(PREPARE_ROUTE, response_model=PreparedImage)
    async def prepare(body: PrepareImage) -> Any:
        try:
            return await run_in_threadpool(decrypter.prepare, body.bucket, body.manifest_key)
        except ManifestMissing as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)

    # A manifest key may hold slashes: the route's {key} matches the rest of the path.
    @router.get(IMAGE_ROUTE.replace("{key}", "{key:path}"))
    async def image(bucket: str, key: str) -> Response:
        try:
            status, path = await run_in_threadpool(decrypter.ready, bucket, key)
        except ManifestMissing as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        if path is None:
            return JSONResponse({"detail": status.reason, "code": status.code}, status_code=422)
        return FileResponse(path, media_type="application/octet-stream",
                            headers={SHA256_HEADER: status.sha256 or ""})

    return router
