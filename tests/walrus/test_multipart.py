"""Multipart uploads: create, parts, copy parts, complete (and its refusals), abort, listings."""

from __future__ import annotations

import hashlib
import os

from tests.walrus.helpers import code_and_status, keys_of, s3_error

MIB = 1024 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def upload_parts(s3, bucket: str, key: str, parts: list[bytes]):  # type: ignore[no-untyped-def]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=data)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return upload_id, done


def test_complete_gives_md5_of_md5s_and_byte_exact_body(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    upload_id, done = upload_parts(s3, bucket, "big", parts)
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)
    assert [p["Size"] for p in listed["Parts"]] == [len(p) for p in parts]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big", upload_id)]
    result = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id,
                                          MultipartUpload={"Parts": done})
    assert result["ETag"] == multipart_etag(parts)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["ETag"] == multipart_etag(parts)
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(b"".join(parts)).digest()
    # a range across the boundary between part 1 and part 2
    span = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={5 * MIB - 3}-{5 * MIB + 2}")
    assert span["Body"].read() == parts[0][-3:] + parts[1][:3]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_part_too_small_is_entity_too_small_and_stores_nothing(s3, bucket):  # type: ignore[no-untyped-def]
    upload_id, done = upload_parts(s3, bucket, "small", [b"a" * 1000, b"b" * 1000])
    error = s3_error(s3.complete_multipart_upload, Bucket=bucket, Key="small",
                     UploadId=upload_id, MultipartUpload={"Parts": done})
    assert code_and_status(error) == ("EntityTooSmall", 400)
    assert keys_of(s3, bucket) == []
    # the upload is still there to be fixed or aborted
    assert len(s3.list_parts(Bucket=bucket, Key="small", UploadId=upload_id)["Parts"]) == 2


def test_invalid_part_and_part_order(s3, bucket):  # type: ignore[no-untyped-def]
    upload_id, done = upload_parts(s3, bucket, "k", [b"x" * (5 * MIB), b"y"])
    wrong_etag = [done[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]
    error = s3_error(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id,
                     MultipartUpload={"Parts": wrong_etag})
    assert code_and_status(error) == ("InvalidPart", 400)
    missing = [done[0], {"PartNumber": 7, "ETag": done[1]["ETag"]}]
    error = s3_error(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id,
                     MultipartUpload={"Parts": missing})
    assert code_and_status(error) == ("InvalidPart", 400)
    error = s3_error(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id,
                     MultipartUpload={"Parts": list(reversed(done))})
    assert code_and_status(error) == ("InvalidPartOrder", 400)
    assert keys_of(s3, bucket) == []
    # completing with the first part only is allowed: the last part may be any size
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": done[:1]})
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 5 * MIB


def held(walrus) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    return len(walrus.stored_blobs()), len(walrus.backend.unfinished())


def test_abort_removes_parts(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    stored, unfinished = held(walrus)
    upload_id, _ = upload_parts(s3, bucket, "gone", [b"a", b"b"])
    # on files each part is a blob; on a cluster the parts are in the cluster's one upload
    assert held(walrus) == ((stored + 2, unfinished) if walrus.backend.name == "file"
                            else (stored, unfinished + 1))
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert held(walrus) == (stored, unfinished)
    error = s3_error(s3.list_parts, Bucket=bucket, Key="gone", UploadId=upload_id)
    assert code_and_status(error) == ("NoSuchUpload", 404)
    error = s3_error(s3.upload_part, Bucket=bucket, Key="gone", UploadId=upload_id,
                     PartNumber=1, Body=b"x")
    assert code_and_status(error) == ("NoSuchUpload", 404)


def test_upload_part_copy_and_metadata_from_create(s3, bucket):  # type: ignore[no-untyped-def]
    source = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled", ContentType="text/x-a",
                                           Metadata={"m": "v"})["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=1,
                                CopySource=f"{bucket}/source",
                                CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id,
                                 PartNumber=2, CopySource=f"{bucket}/source")
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload_id,
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                                     {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]})
    got = s3.get_object(Bucket=bucket, Key="assembled")
    assert got["Body"].read() == source[: 5 * MIB] + source
    assert got["ContentType"] == "text/x-a" and got["Metadata"] == {"m": "v"}


def test_multipart_with_crc32_checksums(s3, bucket):  # type: ignore[no-untyped-def]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="sum",
                                           ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for number, data in enumerate([b"1" * (5 * MIB), b"2" * 100], start=1):
        answer = s3.upload_part(Bucket=bucket, Key="sum", UploadId=upload_id, PartNumber=number,
                                Body=data, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": number, "ETag": answer["ETag"],
                      "ChecksumCRC32": answer["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="sum", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert done["ChecksumCRC32"].endswith("-2")
    got = s3.get_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert len(got["Body"].read()) == 5 * MIB + 100


def test_bad_part_numbers(s3, bucket):  # type: ignore[no-untyped-def]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="n")["UploadId"]
    for number in (0, 10001):
        error = s3_error(s3.upload_part, Bucket=bucket, Key="n", UploadId=upload_id,
                         PartNumber=number, Body=b"x")
        assert code_and_status(error) == ("InvalidArgument", 400)


def test_get_and_head_by_part_number(s3, bucket):  # type: ignore[no-untyped-def]
    parts = [os.urandom(5 * MIB), b"second part"]
    upload_id, done = upload_parts(s3, bucket, "parts", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload_id,
                                 MultipartUpload={"Parts": done})
    second = s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert second["Body"].read() == b"second part"
    assert second["PartsCount"] == 2
    assert second["ContentRange"] == f"bytes {5 * MIB}-{5 * MIB + 10}/{5 * MIB + 11}"
    head = s3.head_object(Bucket=bucket, Key="parts", PartNumber=1)
    assert head["ContentLength"] == 5 * MIB and head["PartsCount"] == 2
    error = s3_error(s3.get_object, Bucket=bucket, Key="parts", PartNumber=3)
    assert code_and_status(error) == ("InvalidPartNumber", 416)
    s3.put_object(Bucket=bucket, Key="single", Body=b"one part")
    assert s3.get_object(Bucket=bucket, Key="single", PartNumber=1)["Body"].read() == b"one part"


def test_completion_that_leaves_parts_out_reads_only_the_chosen_ones(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    # (Ceph 16's RGW assembles every part it holds: a part left out must be one it would
    # take there, at least 5 MiB unless last; see walrus/s3_blobs.py)
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(5 * MIB), b"fourth"]
    upload_id, done = upload_parts(s3, bucket, "some", parts)
    chosen = [done[0], done[2]]  # part 2 left out, and part 4 after the last chosen
    result = s3.complete_multipart_upload(Bucket=bucket, Key="some", UploadId=upload_id,
                                          MultipartUpload={"Parts": chosen})
    assert result["ETag"] == multipart_etag([parts[0], parts[2]])
    assert s3.get_object(Bucket=bucket, Key="some")["Body"].read() == parts[0] + parts[2]
    span = s3.get_object(Bucket=bucket, Key="some", Range=f"bytes={5 * MIB - 2}-{5 * MIB + 1}")
    assert span["Body"].read() == parts[0][-2:] + parts[2][:2]
    second = s3.get_object(Bucket=bucket, Key="some", PartNumber=2)
    assert second["Body"].read() == parts[2] and second["PartsCount"] == 2
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_a_part_uploaded_again_replaces_the_first(s3, bucket):  # type: ignore[no-untyped-def]
    upload_id, done = upload_parts(s3, bucket, "again", [b"a" * (5 * MIB), b"first"])
    etag = s3.upload_part(Bucket=bucket, Key="again", UploadId=upload_id, PartNumber=2,
                          Body=b"second")["ETag"]
    error = s3_error(s3.complete_multipart_upload, Bucket=bucket, Key="again",
                     UploadId=upload_id, MultipartUpload={"Parts": done})
    assert code_and_status(error) == ("InvalidPart", 400)
    s3.complete_multipart_upload(Bucket=bucket, Key="again", UploadId=upload_id,
                                 MultipartUpload={"Parts": [done[0], {"PartNumber": 2,
                                                                      "ETag": etag}]})
    assert s3.get_object(Bucket=bucket, Key="again")["Body"].read() == b"a" * (5 * MIB) + b"second"


def test_part_copied_from_a_multipart_object_across_its_parts(s3, bucket):  # type: ignore[no-untyped-def]
    parts = [os.urandom(5 * MIB), os.urandom(MIB)]
    upload_id, done = upload_parts(s3, bucket, "made-of-parts", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="made-of-parts", UploadId=upload_id,
                                 MultipartUpload={"Parts": done})
    whole = b"".join(parts)
    target = s3.create_multipart_upload(Bucket=bucket, Key="copied", ChecksumAlgorithm="CRC32")
    first, last = 5 * MIB - 10, 5 * MIB + 9  # across the source's two parts
    copied = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=target["UploadId"],
                                 PartNumber=1, CopySource=f"{bucket}/made-of-parts",
                                 CopySourceRange=f"bytes={first}-{last}")["CopyPartResult"]
    assert copied["ETag"] == f'"{hashlib.md5(whole[first:last + 1]).hexdigest()}"'
    s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=target["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": copied["ETag"],
                                                             "ChecksumCRC32": copied["ChecksumCRC32"]}]})
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == whole[first:last + 1]
