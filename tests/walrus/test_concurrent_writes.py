"""PUTs answered together are committed together (walrus/group_commit.py): many at once, the
same key more than once in a group, and conditional PUTs racing for one key all come out as
if each had been applied alone, and no body is left without its object."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from tests.walrus.conftest import ALICE
from tests.walrus.helpers import code_and_status

CALLERS = 16


def committed_blobs(walrus) -> set[str]:  # type: ignore[no-untyped-def]
    return set(walrus.stored_blobs())


def test_many_concurrent_puts_each_read_back_intact_and_overwrites_leave_no_blobs(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    client = walrus.client(ALICE, max_pool_connections=CALLERS)
    before = committed_blobs(walrus)
    bodies = {f"k/{i:03d}": hashlib.sha256(str(i).encode()).digest() * (i + 1) for i in range(96)}

    def put(item: tuple[str, bytes]) -> str:
        return client.put_object(Bucket=bucket, Key=item[0], Body=item[1])["ETag"]

    with ThreadPoolExecutor(CALLERS) as pool:
        etags = list(pool.map(put, bodies.items()))
        # The same keys again, concurrently: each replaces a body, which must be deleted.
        list(pool.map(put, bodies.items()))
    assert etags == ['"' + hashlib.md5(b).hexdigest() + '"' for b in bodies.values()]
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert len(committed_blobs(walrus) - before) == len(bodies)


def test_concurrent_puts_of_one_key_leave_one_object_and_one_body(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    client = walrus.client(ALICE, max_pool_connections=CALLERS)
    before = committed_blobs(walrus)
    bodies = [f"version {i}".encode() for i in range(48)]
    with ThreadPoolExecutor(CALLERS) as pool:
        list(pool.map(lambda b: client.put_object(Bucket=bucket, Key="contested", Body=b), bodies))
    assert s3.get_object(Bucket=bucket, Key="contested")["Body"].read() in bodies
    assert len(committed_blobs(walrus) - before) == 1


def test_only_one_of_racing_if_none_match_puts_creates_the_object(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    client = walrus.client(ALICE, max_pool_connections=CALLERS)
    before = committed_blobs(walrus)
    bodies = [f"candidate {i}".encode() for i in range(48)]

    def create(body: bytes) -> tuple[str, int] | bytes:
        try:
            client.put_object(Bucket=bucket, Key="first", Body=body, IfNoneMatch="*")
        except ClientError as error:
            return code_and_status(error)
        return body

    with ThreadPoolExecutor(CALLERS) as pool:
        outcomes = list(pool.map(create, bodies))
    winners = [o for o in outcomes if isinstance(o, bytes)]
    assert len(winners) == 1
    assert all(o == ("PreconditionFailed", 412) for o in outcomes if not isinstance(o, bytes))
    assert s3.get_object(Bucket=bucket, Key="first")["Body"].read() == winners[0]
    assert len(committed_blobs(walrus) - before) == 1
