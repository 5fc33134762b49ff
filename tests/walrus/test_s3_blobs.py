"""The s3 blob driver on its own, against the test worker's Ceph RGW: each of its three ways
of writing (one PUT of a buffer, one PUT fed while the bytes arrive, a cluster multipart upload
for a body of unknown length), reads of ranges across blobs, and what an abandoned write
leaves on the cluster (nothing)."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ceph import CephCluster
from tests.support.waiting import wait_for
from walrus.s3_blobs import OWNER_KEY, PART_SIZE, S3BlobStore, S3Location

MIB = 1024 * 1024
BODY = os.urandom(2 * PART_SIZE + 3 * MIB + 17)


@pytest.fixture(scope="module")
def location(ceph: CephCluster) -> S3Location:
    return S3Location(ceph.rgw_endpoint, ceph.access_key, ceph.secret_key,
                      f"blobs-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def store(location: S3Location, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3BlobStore]:
    blobs = S3BlobStore(location, tmp_path_factory.mktemp("walrus-home") / "owner")
    yield blobs
    blobs.delete(list(blobs.stored_ids()))
    blobs.client.delete_object(Bucket=location.bucket, Key=OWNER_KEY)
    blobs.client.delete_bucket(Bucket=location.bucket)
    blobs.senders.shutdown(wait=False, cancel_futures=True)


def write(store: S3BlobStore, body: bytes, size: int | None, piece: int = MIB) -> str:
    writer = store.writer(size)
    for start in range(0, len(body), piece):
        writer.write(body[start:start + piece])
    return writer.commit()


def unfinished(store: S3BlobStore) -> list[str]:
    return [u["Key"] for u in
            store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]


@pytest.mark.parametrize("declared", [True, False], ids=["streamed-put", "cluster-multipart"])
def test_large_blob_written_either_way_reads_back_whole_and_in_ranges(store, declared: bool) -> None:  # type: ignore[no-untyped-def]
    blob = write(store, BODY, len(BODY) if declared else None)
    assert blob in set(store.stored_ids()) and unfinished(store) == []
    segments = [[blob, len(BODY)]]
    whole = b"".join(store.iter_range(segments, 0, len(BODY) - 1))
    assert hashlib.sha256(whole).digest() == hashlib.sha256(BODY).digest()
    start, end = PART_SIZE - 9, 2 * PART_SIZE + 9
    assert b"".join(store.iter_range(segments, start, end, chunk=4096)) == BODY[start:end + 1]
    store.delete([blob])
    assert blob not in set(store.stored_ids())


def test_small_blobs_are_one_put_each_and_segments_read_across_them(store) -> None:  # type: ignore[no-untyped-def]
    first, second = write(store, b"hello ", 6), write(store, b"world", None)
    segments = [[first, 6], [second, 5]]
    assert store.read_small(segments, 0, 10) == b"hello world"
    assert store.read_small(segments, 4, 7) == b"o wo"
    empty = write(store, b"", 0)
    assert store.read_small([[empty, 0]], 0, -1) == b""
    store.delete([first, second, empty])
    with pytest.raises(FileNotFoundError):
        store.read_small(segments, 0, 10)


def test_a_small_blob_once_written_or_read_is_read_from_memory(store) -> None:  # type: ignore[no-untyped-def]
    written = write(store, b"kept as written", 15)
    read = write(store, b"kept once read", 14)
    store.cache.forget([read])
    assert store.read_small([[read, 14]], 0, 13) == b"kept once read"  # from the cluster
    # Gone from the cluster behind the store's back: a blob never changes, so its kept copy
    # is still its bytes (a delete through the store forgets it, as the test above shows).
    store.client.delete_objects(Bucket=store.bucket, Delete={
        "Objects": [{"Key": written}, {"Key": read}]})
    assert store.read_small([[written, 15], [read, 14]], 5, 20) == b"as writtenkept o"


@pytest.mark.parametrize("declared", [True, False], ids=["streamed-put", "cluster-multipart"])
def test_abandoned_large_write_leaves_nothing_on_the_cluster(store, declared: bool) -> None:  # type: ignore[no-untyped-def]
    before = set(store.stored_ids())
    writer = store.writer(len(BODY) if declared else None)
    writer.write(BODY[:PART_SIZE + MIB])
    writer.write(BODY[PART_SIZE + MIB:2 * PART_SIZE + MIB])
    writer.abort()
    assert set(store.stored_ids()) == before and unfinished(store) == []


def test_a_body_of_another_length_than_declared_is_never_committed(store) -> None:  # type: ignore[no-untyped-def]
    before = set(store.stored_ids())
    for body in (BODY[:-1], BODY + b"x"):  # short, then long
        writer = store.writer(len(BODY))
        for start in range(0, len(body), MIB):
            writer.write(body[start:start + MIB])
        with pytest.raises(ValueError):
            writer.commit()
    assert set(store.stored_ids()) == before and unfinished(store) == []


def test_a_read_dropped_halfway_or_before_it_starts_ends_its_read_ahead(store) -> None:  # type: ignore[no-untyped-def]
    blob = write(store, BODY, len(BODY))

    def readers() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "walrus-s3-read")

    wait_for(lambda: readers() == 0, timeout=30, what="earlier reads' threads to end")
    halfway = store.iter_range([[blob, len(BODY)]], 0, len(BODY) - 1)
    assert len(next(iter(halfway))) > 0
    never_read = store.iter_range([[blob, len(BODY)]], 0, len(BODY) - 1)
    assert readers() == 2
    del halfway, never_read  # what a client that goes away leaves behind
    wait_for(lambda: readers() == 0, timeout=30, what="the read-ahead threads to end")
    store.delete([blob])


def test_a_bucket_another_walrus_uses_is_refused_and_its_own_walrus_comes_back(  # type: ignore[no-untyped-def]
        store, location: S3Location, tmp_path: Path) -> None:
    blob = write(store, b"belongs to the first Walrus", None)
    with pytest.raises(RuntimeError, match="another Walrus"):
        S3BlobStore(location, tmp_path / "a-second-walrus-owner")
    assert not (tmp_path / "a-second-walrus-owner").exists()
    again = S3BlobStore(location, store_owner_file(store, location, tmp_path))
    assert blob in set(again.stored_ids())
    again.senders.shutdown(wait=False)
    store.delete([blob])


def store_owner_file(store: S3BlobStore, location: S3Location, folder: Path) -> Path:
    """The first Walrus's id file, as a restarted Walrus finds it in its home."""
    owner = store.client.get_object(Bucket=location.bucket, Key=OWNER_KEY)["Body"].read()
    path = folder / "restarted-owner"
    path.write_bytes(owner)
    return path


def test_a_declared_body_refused_after_its_last_byte_is_never_stored(store) -> None:  # type: ignore[no-untyped-def]
    """Walrus checks a body (MD5, checksums, signatures) only once all of it is in: the
    cluster must not have had it all by then, or it stores what Walrus refuses."""
    before = set(store.stored_ids())
    body = BODY[:8 * 256 * 1024]  # streamed, and a whole number of the driver's chunks
    writer = store.writer(len(body))
    try:
        for start in range(0, len(body), 256 * 1024):
            writer.write(body[start:start + 256 * 1024])
        assert writer.held_back > 0  # what the cluster has not had cannot complete the object
    finally:
        writer.abort()
    assert set(store.stored_ids()) == before and unfinished(store) == []
