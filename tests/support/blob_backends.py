"""Where a test Walrus keeps its bodies: each blob backend (walrus/blobs.py) with the settings
that choose it and a look inside that does not depend on the backend's own layout. `s3`
uses a fresh bucket of the test worker's Ceph RGW (the `ceph` fixture, tests/support/ceph.py)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from walrus.blobs import BLOB_ID

BACKENDS = ["file", "s3"]


@dataclass
class BlobBackend:
    """Where one Walrus keeps its bodies: its environment, and a look inside."""

    name: str
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    client: Any = None  # straight to the cluster, with the cluster's keys (s3)
    bucket: str = ""

    def stored(self) -> list[str]:
        """The ids of committed blobs."""
        if self.name == "s3":
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            # every blob, not the object that names the bucket's Walrus (walrus/s3_blobs.py)
            return [o["Key"] for page in pages for o in page.get("Contents", [])
                    if BLOB_ID.match(o["Key"])]
        root = self.home / "walrus" / "objects"
        return [p.name for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"]

    def read(self, blob_id: str) -> bytes:
        if self.name == "s3":
            return self.client.get_object(Bucket=self.bucket, Key=blob_id)["Body"].read()  # type: ignore[no-any-return]
        return (self.home / "walrus" / "objects" / blob_id[:2] / blob_id).read_bytes()

    def leave_crash_leftovers(self, orphan_id: str, unfinished_id: str) -> None:
        """What a Walrus killed mid-write leaves: a committed blob no row names (killed between
        the blob and its row) and a blob half written."""
        if self.name == "s3":
            self.client.put_object(Bucket=self.bucket, Key=orphan_id, Body=b"orphan")
            self.client.create_multipart_upload(Bucket=self.bucket, Key=unfinished_id)
            return
        objects = self.home / "walrus" / "objects"
        (objects / orphan_id[:2] / orphan_id).write_bytes(b"orphan")
        (objects / "tmp" / f"{unfinished_id}.part").write_bytes(b"half an object")

    def unfinished(self) -> list[str]:
        """Blobs being written: the file driver's temporary files, the cluster's uploads."""
        if self.name == "s3":
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            return [u["Key"] for u in uploads]
        return [p.name for p in (self.home / "walrus" / "objects" / "tmp").glob("*")]


def blob_backend(request: pytest.FixtureRequest, name: str, home: Path) -> BlobBackend:
    """A backend of its own for one Walrus: on s3, a fresh bucket in this worker's Ceph."""
    if name == "file":
        return BlobBackend("file", home)
    from tests.support.ceph import CephCluster
    from walrus.s3_blobs import S3Location, backend_client

    ceph: CephCluster = request.getfixturevalue("ceph")
    bucket = f"walrus-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    env = {"WALRUS_BACKEND": "s3", "WALRUS_S3_ENDPOINT": ceph.rgw_endpoint,
           "WALRUS_S3_ACCESS_KEY": ceph.access_key, "WALRUS_S3_SECRET_KEY": ceph.secret_key,
           "WALRUS_S3_BUCKET": bucket}
    client = backend_client(S3Location(ceph.rgw_endpoint, ceph.access_key, ceph.secret_key,
                                       bucket))
    return BlobBackend("s3", home, env, client, bucket)
