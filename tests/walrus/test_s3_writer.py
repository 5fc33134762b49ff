"""The S3 answer writer (services/s3xml/writer.py) against botocore's own parser: for every
operation Walrus implements, a result with every member Walrus fills is rendered and read back
with botocore.parsers.RestXMLParser and the operation's output shape, and must come back as it
went in. Element names, flattened lists, attributes, header locations and timestamp formats all
come from the model, so a wrong one shows here as a missing or changed value."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from botocore.handlers import parse_get_bucket_location
from botocore.parsers import RestXMLParser

from services import s3xml
from services.s3xml import model
from walrus import dispatch

UTC = dt.timezone.utc
T1 = dt.datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
T2 = dt.datetime(2025, 12, 31, 23, 59, 59, 1000, tzinfo=UTC)
# Headers carry whole seconds (RFC 822).
T_HEADER = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
OWNER = {"ID": "123456789012", "DisplayName": "alice"}
CONTENTS = [{"Key": "a&b<c>.txt", "LastModified": T1, "ETag": '"0cc175b9c0f1b6a831c399e269772661"',
             "Size": 1, "ChecksumAlgorithm": ["CRC32"], "StorageClass": "STANDARD",
             "Owner": OWNER},
            {"Key": "b", "LastModified": T2, "ETag": '"d41d8cd98f00b204e9800998ecf8427e-2"',
             "Size": 10485760, "StorageClass": "GLACIER", "Owner": OWNER}]
PREFIXES = [{"Prefix": "photos/"}, {"Prefix": "videos/"}]
VERSION = {"ETag": '"0cc175b9c0f1b6a831c399e269772661"', "Size": 1, "StorageClass": "STANDARD",
           "Key": "k", "VersionId": "v2", "IsLatest": False, "LastModified": T1, "Owner": OWNER}
MARKER = {"Owner": OWNER, "Key": "k", "VersionId": "v3", "IsLatest": True, "LastModified": T2}
INITIATOR = {"ID": "123456789012", "DisplayName": "alice"}

# operation -> results to round-trip (each must come back exactly)
CASES: dict[str, list[dict[str, Any]]] = {
    "ListBuckets": [{"Owner": OWNER, "Buckets": [{"Name": "b1", "CreationDate": T1},
                                                 {"Name": "b2", "CreationDate": T2}]},
                    {"Owner": OWNER, "Buckets": []}],
    "CreateBucket": [{"Location": "/b1"}],
    "HeadBucket": [{"BucketRegion": "eu-west-1"}],
    "DeleteBucket": [{}],
    "GetBucketLocation": [{"LocationConstraint": "eu-west-1"}],
    "ListObjects": [{"Name": "b", "Prefix": "", "Marker": "", "MaxKeys": 1000, "Delimiter": "/",
                     "IsTruncated": True, "EncodingType": "url", "NextMarker": "b",
                     "Contents": CONTENTS, "CommonPrefixes": PREFIXES},
                    {"Name": "b", "Prefix": "x", "Marker": "", "MaxKeys": 0, "IsTruncated": False}],
    "ListObjectsV2": [{"Name": "b", "Prefix": "", "MaxKeys": 2, "KeyCount": 3,
                       "IsTruncated": True, "ContinuationToken": "QWE=",
                       "NextContinuationToken": "QWI=", "StartAfter": "a",
                       "Contents": [dict(CONTENTS[0])], "CommonPrefixes": PREFIXES[:1]}],
    "ListObjectVersions": [{"IsTruncated": True, "KeyMarker": "", "VersionIdMarker": "",
                            "NextKeyMarker": "k", "NextVersionIdMarker": "v2", "Name": "b",
                            "Prefix": "", "Delimiter": "/", "MaxKeys": 3, "EncodingType": "url",
                            "Versions": [VERSION], "DeleteMarkers": [MARKER],
                            "CommonPrefixes": PREFIXES[:1]}],
    "GetBucketVersioning": [{"Status": "Enabled"}, {"Status": "Suspended"}, {}],
    "PutBucketVersioning": [{}],
    "ListMultipartUploads": [{"Bucket": "b", "KeyMarker": "", "UploadIdMarker": "",
                              "NextKeyMarker": "k2", "NextUploadIdMarker": "u2", "Prefix": "",
                              "Delimiter": "/", "MaxUploads": 2, "IsTruncated": True,
                              "Uploads": [{"Key": "k", "UploadId": "u1", "Initiator": INITIATOR,
                                           "Owner": OWNER, "StorageClass": "STANDARD",
                                           "Initiated": T1, "ChecksumAlgorithm": "SHA256"}],
                              "CommonPrefixes": PREFIXES}],
    "GetBucketAcl": [{"Owner": OWNER, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": "123456789012", "DisplayName": "alice"},
         "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
         "Permission": "READ"}]}],
    "PutBucketAcl": [{}],
    "GetBucketCors": [{"CORSRules": [
        {"ID": "site", "AllowedHeaders": ["*"], "AllowedMethods": ["GET", "PUT"],
         "AllowedOrigins": ["https://example.com"], "ExposeHeaders": ["ETag", "x-amz-meta-a"],
         "MaxAgeSeconds": 3000},
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}],
    "PutBucketCors": [{}],
    "DeleteBucketCors": [{}],
    "GetBucketPolicy": [{"Policy": '{"Version": "2012-10-17", "Statement": []}'}],
    "PutBucketPolicy": [{}],
    "DeleteBucketPolicy": [{}],
    "GetBucketPolicyStatus": [{"PolicyStatus": {"IsPublic": True}},
                              {"PolicyStatus": {"IsPublic": False}}],
    "PutObject": [{"ETag": '"0cc175b9c0f1b6a831c399e269772661"', "ChecksumCRC32": "6Gbvqg==",
                   "VersionId": "v1"}, {"ETag": '"x"'}],
    "CopyObject": [{"CopyObjectResult": {"LastModified": T1, "ETag": '"e"',
                                         "ChecksumSHA256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
                    "VersionId": "v2", "CopySourceVersionId": "v1"}],
    "DeleteObject": [{"VersionId": "v3", "DeleteMarker": True}, {}],
    "DeleteObjects": [{"Deleted": [{"Key": "a", "VersionId": "v1"},
                                   {"Key": "b", "DeleteMarker": True,
                                    "DeleteMarkerVersionId": "v9"}],
                       "Errors": [{"Key": "c", "Code": "AccessDenied",
                                   "Message": "Access Denied"}]}],
    "GetObjectAcl": [{"Owner": OWNER, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": "210987654321"}, "Permission": "READ"}]}],
    "PutObjectAcl": [{}],
    "GetObjectTagging": [{"TagSet": [{"Key": "k", "Value": "v&<>"}, {"Key": "e", "Value": ""}],
                          "VersionId": "v1"}, {"TagSet": []}],
    "PutObjectTagging": [{"VersionId": "v1"}, {}],
    "DeleteObjectTagging": [{"VersionId": "v1"}, {}],
    "CreateMultipartUpload": [{"Bucket": "b", "Key": "k", "UploadId": "u1",
                               "ChecksumAlgorithm": "CRC32C"}],
    "UploadPart": [{"ETag": '"p"', "ChecksumCRC32C": "AAAAAA=="}],
    "UploadPartCopy": [{"CopyPartResult": {"LastModified": T1, "ETag": '"p"'},
                        "CopySourceVersionId": "v1"}],
    "CompleteMultipartUpload": [{"Location": "http://127.0.0.1/b/k", "Bucket": "b", "Key": "k",
                                 "ETag": '"abc-2"', "ChecksumCRC32": "AAAAAA==-2",
                                 "VersionId": "v4"}],
    "AbortMultipartUpload": [{}],
    "ListParts": [{"Bucket": "b", "Key": "k", "UploadId": "u1", "Initiator": INITIATOR,
                   "Owner": OWNER, "StorageClass": "STANDARD_IA", "PartNumberMarker": 0,
                   "NextPartNumberMarker": 2, "MaxParts": 2, "IsTruncated": True,
                   "ChecksumAlgorithm": "SHA1",
                   "Parts": [{"PartNumber": 1, "LastModified": T1, "ETag": '"p1"',
                              "Size": 5242880, "ChecksumSHA1": "AAAA"},
                             {"PartNumber": 2, "LastModified": T2, "ETag": '"p2"', "Size": 3}]}],
    "GetBucketLifecycleConfiguration": [{"Rules": [
        {"Expiration": {"Days": 30}, "ID": "logs", "Filter": {"Prefix": "logs/"},
         "Status": "Enabled",
         "Transitions": [{"Days": 10, "StorageClass": "STANDARD_IA"},
                         {"Date": dt.datetime(2030, 1, 1, tzinfo=UTC), "StorageClass": "GLACIER"}],
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 5, "StorageClass": "GLACIER",
                                           "NewerNoncurrentVersions": 2}],
         "NoncurrentVersionExpiration": {"NoncurrentDays": 40, "NewerNoncurrentVersions": 3},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"Expiration": {"ExpiredObjectDeleteMarker": True}, "ID": "tagged",
         "Filter": {"And": {"Prefix": "p/", "Tags": [{"Key": "a", "Value": "1"},
                                                      {"Key": "b", "Value": "2"}],
                            "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
         "Status": "Disabled"},
        {"Expiration": {"Date": dt.datetime(2031, 6, 1, tzinfo=UTC)}, "ID": "legacy",
         "Prefix": "old/", "Status": "Enabled"},
        {"ID": "one-tag", "Filter": {"Tag": {"Key": "t", "Value": "v"}}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}],
    "PutBucketLifecycleConfiguration": [{}],
    "DeleteBucketLifecycle": [{}],
    "GetObjectAttributes": [{"ETag": "0cc175b9c0f1b6a831c399e269772661",
                             "Checksum": {"ChecksumCRC32": "6Gbvqg=="},
                             "ObjectParts": {"TotalPartsCount": 3, "PartNumberMarker": 1,
                                             "NextPartNumberMarker": 2, "MaxParts": 1,
                                             "IsTruncated": True,
                                             "Parts": [{"PartNumber": 2, "Size": 5242880}]},
                             "StorageClass": "STANDARD", "ObjectSize": 10485761,
                             "LastModified": T_HEADER, "VersionId": "v1"}],
    # The body of a GET is the object, streamed by Walrus; the writer gives the headers.
    "GetObject": [{"ETag": '"e"', "LastModified": T_HEADER, "AcceptRanges": "bytes",
                   "ContentType": "text/plain", "ContentLength": 3, "VersionId": "v1",
                   "TagCount": 2, "StorageClass": "GLACIER", "PartsCount": 2,
                   "ContentEncoding": "gzip", "CacheControl": "no-cache",
                   "ContentDisposition": "attachment", "ContentLanguage": "en",
                   "Metadata": {"colour": "blue", "shape": "round"},
                   "ChecksumCRC32": "6Gbvqg==", "ChecksumType": "FULL_OBJECT",
                   "ContentRange": "bytes 0-2/10"}],
    "HeadObject": [{"ETag": '"e"', "LastModified": T_HEADER, "AcceptRanges": "bytes",
                    "ContentType": "text/plain", "ContentLength": 3, "VersionId": "v1",
                    "TagCount": 2, "StorageClass": "GLACIER", "DeleteMarker": False,
                    "Metadata": {"colour": "blue"}}],
}


def _parse(operation: str, answer: s3xml.Answer, status: int = 200) -> dict[str, Any]:
    op = model.operation(operation)
    response = {"body": answer.body, "headers": dict(answer.headers),
                "status_code": answer.status or status}
    parsed = RestXMLParser().parse(response, op.output_shape)
    if operation in model.TEXT_ROOTS:
        # What botocore does after parsing this one answer (a customization in its handlers).
        parse_get_bucket_location(parsed, SimpleNamespace(raw=True, content=answer.body))
    parsed.pop("ResponseMetadata", None)
    if operation == "GetObject":
        assert not parsed.pop("Body")
    return parsed


def test_every_operation_walrus_implements_has_a_case() -> None:
    assert sorted(CASES) == dispatch.operation_names()


@pytest.mark.parametrize("operation", sorted(CASES))
def test_round_trip_through_botocores_parser(operation: str) -> None:
    for result in CASES[operation]:
        answer = s3xml.render(operation, result)
        parsed = _parse(operation, answer)
        assert parsed == result, answer.body.decode() + "\n" + repr(answer.headers)
        if answer.body and operation != "GetBucketPolicy":  # whose body is the JSON itself
            # Well-formed, in S3's namespace, declared as S3 declares it.
            assert answer.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
            root = ET.fromstring(answer.body)
            assert root.tag.startswith("{http://s3.amazonaws.com/doc/2006-03-01/}")


def test_versions_and_delete_markers_are_written_in_the_given_order() -> None:
    older = {**VERSION, "VersionId": "v1"}
    mixed = s3xml.Mixed([("DeleteMarkers", MARKER), ("Versions", VERSION), ("Versions", older)])
    answer = s3xml.render("ListObjectVersions", {"Name": "b", "IsTruncated": False,
                                                 "Versions": mixed})
    root = ET.fromstring(answer.body)
    tags = [child.tag.split("}")[1] for child in root if child.tag.endswith(("Version", "Marker"))]
    assert tags == ["DeleteMarker", "Version", "Version"]
    parsed = _parse("ListObjectVersions", answer)
    assert parsed["DeleteMarkers"] == [MARKER]
    assert [v["VersionId"] for v in parsed["Versions"]] == ["v2", "v1"]


def test_element_names_come_from_the_model() -> None:
    body = s3xml.render("ListObjectVersions", {"Versions": [VERSION],
                                               "DeleteMarkers": [MARKER]}).body.decode()
    # flattened lists take their locationName, with no wrapper
    assert "<Version><ETag>" in body and "<DeleteMarker><Owner>" in body
    assert "<Versions>" not in body
    acl = s3xml.render("GetBucketAcl", CASES["GetBucketAcl"][0]).body.decode()
    assert "<AccessControlList><Grant><Grantee xmlns:xsi=" in acl
    assert 'xsi:type="Group"' in acl
    tags = s3xml.render("GetObjectTagging", {"TagSet": []}).body.decode()
    assert "<TagSet></TagSet>" in tags
    headers = s3xml.render("GetObjectAttributes", {"LastModified": T_HEADER}).headers
    assert headers == {"Last-Modified": "Wed, 04 Mar 2026 05:06:07 GMT"}


def test_text_nothing_xml_can_carry_still_gives_a_parsable_answer() -> None:
    answer = s3xml.render("ListObjectsV2", {"Name": "b", "Contents": [
        {"Key": "tab\tcr\rbell\x07", "Size": 0}]})
    parsed = _parse("ListObjectsV2", answer)
    assert parsed["Contents"][0]["Key"] == "tab\tcr\rbell\ufffd"


@pytest.mark.parametrize("result, message", [
    ({"Contnets": []}, "'Contnets' is not a member"),
    ({"Contents": [{"Key": "a", "Size": "big"}]}, "Contents.0.Size"),
    ({"IsTruncated": "yes"}, "IsTruncated"),
    ({"Contents": {"Key": "a"}}, "expected a list"),
])
def test_a_result_the_shape_does_not_describe_is_refused_loudly(result: dict[str, Any],
                                                                message: str) -> None:
    with pytest.raises(s3xml.ShapeMismatch, match=message):
        s3xml.render("ListObjectsV2", result)


def test_unknown_operation_is_refused() -> None:
    with pytest.raises(s3xml.ShapeMismatch):
        s3xml.render("ListEverything", {})
