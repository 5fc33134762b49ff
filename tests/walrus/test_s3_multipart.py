"""Walrus's multipart uploads as the cluster's own (walrus/s3_multipart.py), against the test
worker's Ceph RGW: parts written each way into one cluster upload and assembled into one blob,
a refused re-upload that leaves the cluster's part as it was, a part the rows do not describe
refusing the completion, and what a crash on either side of the cluster's completion leaves
after a restart."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from services.db import Database
from services.identity import StaticKeyDirectory
from tests.support.blob_backends import blob_backend
from tests.support.ceph import CephCluster
from tests.support.servers import running
from tests.walrus.conftest import ALICE, make_config
from walrus.app import create_app
from walrus.blobs import PartMismatch
from walrus.models import Part, Upload
from walrus.s3_blobs import OWNER_KEY, PART_SIZE, S3BlobStore, S3Location

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def store(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3BlobStore]:
    location = S3Location(ceph.rgw_endpoint, ceph.access_key, ceph.secret_key,
                          f"parts-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    blobs = S3BlobStore(location, tmp_path_factory.mktemp("walrus-home") / "owner")
    yield blobs
    for blob_id, upload_id in list(blobs.uploads.open_uploads()):
        blobs.uploads.drop_unknown(blob_id, upload_id)
    blobs.delete(list(blobs.stored_ids()))
    blobs.client.delete_object(Bucket=location.bucket, Key=OWNER_KEY)
    blobs.client.delete_bucket(Bucket=location.bucket)
    blobs.senders.shutdown(wait=False, cancel_futures=True)


def write_part(store: S3BlobStore, blob_id: str, upload_id: str, number: int, body: bytes,
               size: int | None) -> str:
    writer = store.uploads.part_writer(blob_id, upload_id, number, size)
    for start in range(0, len(body), MIB):
        writer.write(body[start:start + MIB])
    assert writer.commit() == blob_id
    writer.release()  # where Walrus writes the part's row
    return writer.cluster_etag


def test_parts_written_each_way_are_assembled_into_one_blob(store: S3BlobStore) -> None:
    before = set(store.stored_ids())
    streamed, unknown, small = os.urandom(6 * MIB), os.urandom(PART_SIZE + MIB), b"tail"
    blob_id, upload_id = store.uploads.begin()
    etags = [write_part(store, blob_id, upload_id, 1, streamed, len(streamed)),
             write_part(store, blob_id, upload_id, 2, unknown, None),  # copied by the cluster
             write_part(store, blob_id, upload_id, 3, small, len(small))]
    store.uploads.complete(blob_id, upload_id, list(enumerate(etags, 1)))
    # the unknown-length part's own blob is gone once copied; only the assembled one is left
    assert set(store.stored_ids()) == before | {blob_id}
    assert [k for k, _ in store.uploads.open_uploads()] == []
    sizes = [len(streamed), len(unknown), len(small)]
    segments = [[blob_id, sizes[0], 0], [blob_id, sizes[1], sizes[0]],
                [blob_id, sizes[2], sizes[0] + sizes[1]]]
    whole = streamed + unknown + small
    assert b"".join(store.iter_range(segments, 0, len(whole) - 1)) == whole
    assert store.read_small(segments, sizes[0] - 2, sizes[0] + 1) == whole[sizes[0] - 2:sizes[0] + 2]


def test_a_refused_reupload_leaves_the_part_the_cluster_had(store: S3BlobStore) -> None:
    first, second = os.urandom(6 * MIB), os.urandom(6 * MIB)
    blob_id, upload_id = store.uploads.begin()
    etag = write_part(store, blob_id, upload_id, 1, first, len(first))
    # Walrus's checks refuse the second body after its every byte but the held-back ones
    writer = store.uploads.part_writer(blob_id, upload_id, 1, len(second))
    for start in range(0, len(second), MIB):
        writer.write(second[start:start + MIB])
    writer.abort()
    store.uploads.complete(blob_id, upload_id, [(1, etag)])
    assert store.read_small([[blob_id, len(first), 0]], 0, len(first) - 1) == first


def test_a_part_the_rows_do_not_describe_refuses_the_completion(store: S3BlobStore) -> None:
    blob_id, upload_id = store.uploads.begin()
    recorded = write_part(store, blob_id, upload_id, 1, b"a" * MIB, MIB)
    write_part(store, blob_id, upload_id, 1, b"b" * MIB, MIB)  # its row never written
    with pytest.raises(PartMismatch):
        store.uploads.complete(blob_id, upload_id, [(1, recorded)])
    store.uploads.abort(blob_id, upload_id)
    assert blob_id not in set(store.stored_ids())
    assert blob_id not in [k for k, _ in store.uploads.open_uploads()]


def _client(url: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=ALICE.access_key, aws_secret_access_key=ALICE.secret_key,
                        config=Config(s3={"addressing_style": "path"}))


def test_uploads_survive_a_restart_and_a_completion_cut_off_after_the_cluster_is_swept(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    backend = blob_backend(request, "s3", tmp_path)
    config = make_config(tmp_path, **backend.env)
    keys = StaticKeyDirectory([ALICE])
    first = os.urandom(5 * MIB)
    with running(create_app(config, keys=keys)) as url:
        s3 = _client(url)
        s3.create_bucket(Bucket="multi")
        kept = s3.create_multipart_upload(Bucket="multi", Key="kept")["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3.upload_part(
            Bucket="multi", Key="kept", UploadId=kept, PartNumber=n, Body=body)["ETag"]}
            for n, body in ((1, first), (2, b"end"))]
        cut = s3.create_multipart_upload(Bucket="multi", Key="cut")["UploadId"]
        s3.upload_part(Bucket="multi", Key="cut", UploadId=cut, PartNumber=1, Body=b"lost")
    # Walrus killed after the cluster completed `cut` and before it wrote the object's row
    database = Database(config.database_url("walrus"))
    with database.session() as db:
        upload = db.get(Upload, cut)
        part = db.get(Part, (cut, 1))
        assert upload is not None and part is not None and upload.blob_id is not None
        cut_blob = upload.blob_id
        backend.client.complete_multipart_upload(
            Bucket=backend.bucket, Key=cut_blob, UploadId=upload.cluster_upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part.cluster_etag}]})
    database.engine.dispose()
    assert cut_blob in backend.stored()
    with running(create_app(config, keys=keys)) as url:
        s3 = _client(url)
        listed = s3.list_multipart_uploads(Bucket="multi")["Uploads"]
        assert [(u["Key"], u["UploadId"]) for u in listed] == [("kept", kept)]
        s3.complete_multipart_upload(Bucket="multi", Key="kept", UploadId=kept,
                                     MultipartUpload={"Parts": parts})
        assert s3.get_object(Bucket="multi", Key="kept")["Body"].read() == first + b"end"
        assert "Contents" not in s3.list_objects_v2(Bucket="multi", Prefix="cut")
    assert cut_blob not in backend.stored() and len(backend.stored()) == 1
    assert backend.unfinished() == []


def test_blob_requests_without_the_client_read_ranges_and_name_missing_blobs(
        store: S3BlobStore) -> None:
    body = os.urandom(3000)
    blob_id = uuid.uuid4().hex
    store.put_blob(blob_id, body)
    assert store.read_small([[blob_id, len(body)]], 100, 199) == body[100:200]
    with store.http.get(blob_id, 2990, 2999) as answer:
        assert answer.read() == body[2990:]
    store.delete([blob_id])
    with pytest.raises(FileNotFoundError):
        store.read_small([[blob_id, len(body)]], 0, 9)
    store.delete([blob_id])  # already gone: no error
