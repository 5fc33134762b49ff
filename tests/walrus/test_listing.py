"""ListObjects v1 and v2: prefixes, delimiters, markers, tokens, encoding, byte order."""

from __future__ import annotations

from tests.walrus.helpers import code_and_status, s3_error

KEYS = ["a/1", "a/2", "a/b/3", "b/4", "c", "d+e f", "z/ü", "é", "~tilde"]


def fill(s3, bucket: str, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def test_byte_order_and_url_encoding(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS)
    listed = s3.list_objects_v2(Bucket=bucket)
    # UTF-8 byte order: "~" (0x7e) before "é" (0xc3 0xa9)
    assert [o["Key"] for o in listed["Contents"]] == sorted(KEYS, key=lambda k: k.encode())
    assert listed["KeyCount"] == len(KEYS) and listed["IsTruncated"] is False
    assert listed["EncodingType"] == "url"
    first = listed["Contents"][0]
    assert first["Size"] == 1 and first["ETag"] == '"9dd4e461268c8034f5c8564e155c67a6"'
    assert first["StorageClass"] == "STANDARD"


def test_delimiter_and_common_prefixes(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS)
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "z/"]
    assert [o["Key"] for o in top["Contents"]] == ["c", "d+e f", "~tilde", "é"]
    inner = s3.list_objects_v2(Bucket=bucket, Delimiter="/", Prefix="a/")
    assert [o["Key"] for o in inner["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["a/b/"]
    v1 = s3.list_objects(Bucket=bucket, Delimiter="/", Prefix="a/")
    assert [o["Key"] for o in v1["Contents"]] == ["a/1", "a/2"]
    assert v1["Contents"][0]["Owner"]["ID"] == "111111111111"


def test_v2_pages_with_continuation_tokens_count_prefixes_too(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS)
    seen_keys, seen_prefixes, pages = [], [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                             PaginationConfig={"PageSize": 2}):
        pages += 1
        assert page["KeyCount"] <= 2
        seen_keys += [o["Key"] for o in page.get("Contents", [])]
        seen_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert seen_prefixes == ["a/", "b/", "z/"]
    assert seen_keys == ["c", "d+e f", "~tilde", "é"]
    assert pages == 4


def test_v1_pages_with_markers(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS)
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket,
                                                          PaginationConfig={"PageSize": 3}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == sorted(KEYS, key=lambda k: k.encode())
    first = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert first["IsTruncated"] is True and first["NextMarker"] == "a/2"
    rest = s3.list_objects(Bucket=bucket, Marker="a/2", Delimiter="/")
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["b/", "z/"]


def test_start_after_fetch_owner_and_max_keys(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS)
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/4", FetchOwner=True, MaxKeys=2)
    assert [o["Key"] for o in after["Contents"]] == ["c", "d+e f"]
    assert after["Contents"][0]["Owner"]["ID"] == "111111111111"
    assert after["StartAfter"] == "b/4" and after["IsTruncated"] is True
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    none = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert "Contents" not in none


def test_prefix_without_match_and_bad_token(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS[:2])
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="nothing")
    error = s3_error(s3.list_objects_v2, Bucket=bucket, ContinuationToken="!!bad!!")
    assert code_and_status(error) == ("InvalidArgument", 400)


def test_many_keys_under_many_prefixes_page_in_order(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    # Rows go straight into the database: a listing over thousands of keys, fast to set up.
    from sqlalchemy import insert

    from services.clock import utcnow
    from walrus.models import Object

    keys = [f"p{i % 40:02d}/k{i:05d}" for i in range(3000)]
    with walrus.database().session() as session:
        session.execute(insert(Object), [
            {"bucket": bucket, "key": key, "size": 0, "etag": "d41d8cd98f00b204e9800998ecf8427e",
             "last_modified": utcnow(), "content_type": "binary/octet-stream", "meta": {},
             "checksums": {}, "segments": [], "parts_count": None, "owner_id": "111111111111",
             "owner_name": "alice", "acl": []} for key in keys])
    listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", [])]
    assert listed == sorted(keys)
    prefixes = [p["Prefix"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 7})
        for p in page.get("CommonPrefixes", [])]
    assert prefixes == [f"p{i:02d}/" for i in range(40)]


def test_list_object_versions_shows_each_object_once(s3, bucket):  # type: ignore[no-untyped-def]
    fill(s3, bucket, KEYS)
    pages = list(s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 4}))
    versions = [v for page in pages for v in page.get("Versions", [])]
    assert [v["Key"] for v in versions] == sorted(KEYS, key=lambda k: k.encode())
    assert {v["VersionId"] for v in versions} == {"null"} and all(v["IsLatest"] for v in versions)
    nested = s3.list_object_versions(Bucket=bucket, Delimiter="/", Prefix="a/")
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["a/b/"]
