"""Walrus decrypts a bundle once, on first use, and streams the image to nodes through its
signed internal route; the node side here is the NC's real image cache. Broken bundles fail
with a reason instead of failing the node."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from clc.boot_images import image_url, resolve_for_launch
from clc.image_sync import sync_with_walrus
from clc.models.images import Image
from clc.walrus_client import HttpWalrus
from nc.image_cache import ImageCache, ImageFetchError
from services.errors import EC2Error
from services.internal import InternalCallError, InternalClient
from services.messages.images import PREPARE_ROUTE, PreparedImage, PrepareImage
from tests.images.conftest import MIB, ImageCloud, unique
from tests.support.clc import SECRET
from tests.support.blob_backends import BACKENDS

# The bundle path on each blob backend: parts read from files or from the S3 cluster.
pytestmark = pytest.mark.parametrize("cloud", BACKENDS, indirect=True)


def _prepare(cloud: ImageCloud, location: str) -> PreparedImage:
    bucket, key = location.split("/", 1)
    client = InternalClient(cloud.walrus_url, SECRET)
    try:
        return client.call("POST", PREPARE_ROUTE, PrepareImage(bucket=bucket, manifest_key=key),
                           PreparedImage)
    finally:
        client.close()


def test_node_streams_the_decrypted_image_once_decrypted(cloud: ImageCloud, tmp_path: Path) -> None:
    data = os.urandom(2 * MIB + 777) + bytes(MIB)
    built = cloud.bundle(tmp_path, data=data, part_size=MIB)
    assert len(built.part_paths) == 3
    location = cloud.upload(built)
    emi = cloud.ec2().register_image(ImageLocation=location, Name=unique("streamed"))["ImageId"]
    with cloud.db().session() as session:
        ref, _, _ = resolve_for_launch(session, cloud.admin.account_id, emi, None, None).refs(cloud.walrus_url)
    assert ref.checksum == "sha256:" + hashlib.sha256(data).hexdigest()

    first = ImageCache(tmp_path / "node-1", 100, secret=SECRET).ensure(ref)
    assert first.read_bytes() == data
    decrypted = sorted((cloud.home / "walrus" / "images").glob("*.img"))
    stamps = {p: p.stat().st_mtime_ns for p in decrypted}
    second = ImageCache(tmp_path / "node-2", 100, secret=SECRET).ensure(ref)
    assert second.read_bytes() == data
    # The second node got the same decrypted file: nothing was decrypted again.
    assert {p: p.stat().st_mtime_ns for p in sorted((cloud.home / "walrus" / "images").glob("*.img"))} == stamps

    response = httpx.get(ref.url)  # type: ignore[arg-type]
    assert response.status_code == 403  # unsigned: not for users


def test_corrupt_part_fails_the_image_with_its_reason(cloud: ImageCloud, tmp_path: Path) -> None:
    bucket = unique("corrupt")
    built = cloud.bundle(tmp_path, data=os.urandom(300 * 1024))
    location = cloud.upload(built, bucket=bucket)
    emi = cloud.ec2().register_image(ImageLocation=location, Name=unique("corrupt"))["ImageId"]
    part = built.part_paths[0]
    cloud.s3().put_object(Bucket=bucket, Key=part.name, Body=b"x" + part.read_bytes()[1:])
    with cloud.db().session() as session:
        ref, _, _ = resolve_for_launch(session, cloud.admin.account_id, emi, None, None).refs(cloud.walrus_url)
    with pytest.raises(ImageFetchError, match="HTTP 422"):
        ImageCache(tmp_path / "node", 100, secret=SECRET).ensure(ref)
    status = _prepare(cloud, location)
    assert status.state == "failed" and status.code == "Bundle.PartCorrupt"
    assert status.reason is not None and f"part 0 ({part.name}) is corrupt" in status.reason
    client = InternalClient(cloud.walrus_url, SECRET)
    with pytest.raises(InternalCallError) as caught:
        client.call("GET", ref.url.removeprefix(cloud.walrus_url))  # type: ignore[union-attr]
    assert caught.value.status == 422 and "is corrupt" in str(caught.value.detail)
    client.close()

    # The CLC learns it: the image is failed, with Walrus's reason, and launches are refused.
    walrus = HttpWalrus(cloud.clc.config, cloud.admin)
    with cloud.db().session() as session:
        assert sync_with_walrus(session, walrus, emi).state == "failed"
    image = cloud.ec2().describe_images(ImageIds=[emi])["Images"][0]
    assert image["State"] == "failed" and "is corrupt" in image["StateReason"]["Message"]
    with pytest.raises(EC2Error) as refused, cloud.db().session() as session:
        resolve_for_launch(session, cloud.admin.account_id, emi, None, None)
    assert refused.value.code == "InvalidAMIID.Unavailable" and "is corrupt" in refused.value.message

    # Uploading the part again repairs the bundle: Walrus sees a new version and decrypts it.
    cloud.s3().put_object(Bucket=bucket, Key=part.name, Body=part.read_bytes())
    with cloud.db().session() as session:
        assert sync_with_walrus(session, walrus, emi).state == "available"
    walrus.close()
    assert cloud.ec2().describe_images(ImageIds=[emi])["Images"][0]["State"] == "available"
    assert ImageCache(tmp_path / "node-again", 100, secret=SECRET).ensure(ref).stat().st_size == 300 * 1024


def test_bad_signature_and_missing_pieces(cloud: ImageCloud, tmp_path: Path) -> None:
    bucket = unique("forged")
    built = cloud.bundle(tmp_path, name="honest")
    location = cloud.upload(built, bucket=bucket)
    key = location.split("/", 1)[1]
    cloud.s3().put_object(Bucket=bucket, Key=key, Body=built.manifest_path.read_bytes().replace(
        b"<name>honest</name>", b"<name>forged</name>"))
    status = _prepare(cloud, location)
    assert status.state == "failed" and status.code == "Bundle.SignatureInvalid"

    missing_part = cloud.upload(cloud.bundle(tmp_path / "m"), bucket=unique("parts"))
    missing_bucket, missing_key = missing_part.split("/", 1)
    cloud.s3().delete_object(Bucket=missing_bucket, Key=missing_key.replace(".manifest.xml", ".part.00"))
    status = _prepare(cloud, missing_part)
    assert status.state == "failed" and "missing" in (status.reason or "")

    with pytest.raises(InternalCallError) as caught:
        _prepare(cloud, f"{bucket}/nothing.manifest.xml")
    assert caught.value.status == 404


def test_image_url_quotes_keys(cloud: ImageCloud, tmp_path: Path) -> None:
    bucket = unique("quoted")
    built = cloud.bundle(tmp_path, name="with space")
    cloud.upload(built, bucket=bucket)  # creates the bucket
    # The same bundle again under a folder whose name needs quoting.
    s3 = cloud.s3()
    for path in [*built.part_paths, built.manifest_path]:
        s3.upload_file(str(path), bucket, f"my folder/{path.name}")
    location = f"{bucket}/my folder/{built.manifest_path.name}"
    emi = cloud.ec2().register_image(ImageLocation=location, Name=unique("quoted"))["ImageId"]
    with cloud.db().session() as session:
        ref, _, _ = resolve_for_launch(session, cloud.admin.account_id, emi, None, None).refs(cloud.walrus_url)
        assert ref.url == image_url(cloud.walrus_url, session.get(Image, emi))
    assert "my%20folder/" in (ref.url or "")
    path = ImageCache(tmp_path / "node", 100, secret=SECRET).ensure(ref)
    assert path.stat().st_size == 64 * 1024
