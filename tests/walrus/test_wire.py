"""Every operation Walrus implements, answered by a live Walrus to boto3 and read back from the
raw answer with botocore's own parser (RestXMLParser and the operation's output shape), checked
strictly: botocore skips elements it does not know, so an answer whose element names drift
from the model would lose values silently; here every element and attribute of every answer
must be one the output shape names, the root must be S3's, and the values read back must be
what boto3 gave the caller."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus
from types import SimpleNamespace
from typing import Any
from xml.etree import ElementTree as ET

from botocore.handlers import parse_get_bucket_location
from botocore.model import ListShape, Shape, StructureShape
from botocore.parsers import RestXMLParser

from services.s3xml import model
from tests.walrus.conftest import ALICE
from walrus import dispatch

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
BODY = b"0123456789" * 600_000  # two parts: 5 MiB and the rest


def _wire_name(member: Shape, name: str) -> str:
    # As botocore's BaseXMLResponseParser._member_key_name picks it.
    if isinstance(member, ListShape) and member.serialization.get("flattened"):
        inner = member.member.serialization.get("name")
        if inner:
            return str(inner)
    return str(member.serialization.get("name") or name)


def _strict(node: ET.Element, shape: Shape, path: str) -> None:
    """Every child element of `node` is one `shape` names; attributes only where it has them."""
    if isinstance(shape, StructureShape):
        elements = {_wire_name(m, n): m for n, m in shape.members.items()
                    if not m.serialization.get("location") and not m.serialization.get("xmlAttribute")}
        attributes = {m.serialization["name"].split(":")[-1] for m in shape.members.values()
                      if m.serialization.get("xmlAttribute")}
        for attribute in node.attrib:
            assert attribute.split("}")[-1] in attributes, f"{path}: attribute {attribute}"
        for child in node:
            tag = child.tag.replace(S3_NS, "")
            assert tag in elements, f"{path}/{tag} is not a member of {shape.name}"
            member = elements[tag]
            if isinstance(member, ListShape) and member.serialization.get("flattened"):
                _strict(child, member.member, f"{path}/{tag}")
            else:
                _strict(child, member, f"{path}/{tag}")
    elif isinstance(shape, ListShape):
        for child in node:
            _strict(child, shape.member, f"{path}/{child.tag.replace(S3_NS, '')}")
    else:
        assert len(node) == 0, f"{path}: a {shape.type_name} with child elements"
        assert not node.attrib, f"{path}: attributes on a {shape.type_name}"


def _url_decoded(result: dict[str, Any]) -> None:
    """Listed names as boto3 hands them over when it asked for encoding-type=url itself (no
    name here has a '+' or '%' of its own, so decoding twice changes nothing)."""
    for name in ("Delimiter", "Marker", "NextMarker", "Prefix", "KeyMarker", "NextKeyMarker",
                 "StartAfter"):
        if name in result:
            result[name] = unquote_plus(result[name])
    for listed in ("Contents", "CommonPrefixes", "Versions", "DeleteMarkers"):
        for item in result.get(listed, []):
            for name in ("Key", "Prefix"):
                if name in item:
                    item[name] = unquote_plus(item[name])


def _check(operation: str, http: Any, parsed: dict[str, Any]) -> None:
    shape = model.operation(operation).output_shape
    streaming = operation == "GetObject"
    body = b"" if streaming else http.content
    reparsed = RestXMLParser().parse({"body": body, "headers": http.headers,
                                      "status_code": http.status_code}, shape)
    if operation in model.TEXT_ROOTS:
        parse_get_bucket_location(reparsed, SimpleNamespace(raw=True, content=body))
    for result in (reparsed, parsed):
        result.pop("ResponseMetadata", None)
        result.pop("Body", None)
        if result.get("EncodingType") == "url":
            _url_decoded(result)
    assert reparsed == parsed, operation
    if not body.strip():
        return
    payload = shape.serialization.get("payload")
    if payload and shape.members[payload].type_name in ("string", "blob"):
        return  # the body is the member's text (GetBucketPolicy's JSON)
    root = ET.fromstring(body)
    assert root.tag.startswith(S3_NS), f"{operation}: root {root.tag} outside S3's namespace"
    tag = root.tag.replace(S3_NS, "")
    if operation in model.TEXT_ROOTS:
        assert tag == model.TEXT_ROOTS[operation] and len(root) == 0
        return
    if payload:
        member = shape.members[payload]
        assert tag == _wire_name(member, payload), operation
        _strict(root, member, tag)
    else:
        assert tag == model.ROOTS[operation], operation
        _strict(root, shape, tag)


def test_every_operation_round_trips_through_botocores_parser(walrus):  # type: ignore[no-untyped-def]
    s3 = walrus.client(ALICE)
    seen: dict[str, int] = {}

    def after_call(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            _check(model.name, http_response, dict(parsed))
            seen[model.name] = seen.get(model.name, 0) + 1

    # First, before botocore's own after-call handlers URL-decode listed keys.
    s3.meta.events.register_first("after-call.s3", after_call)
    b = "wire-bucket"
    s3.create_bucket(Bucket=b)
    s3.create_bucket(Bucket="wire-empty")
    s3.head_bucket(Bucket=b)
    assert s3.get_bucket_location(Bucket=b)["LocationConstraint"] == walrus.config.REGION
    assert {x["Name"] for x in s3.list_buckets()["Buckets"]} >= {b, "wire-empty"}
    s3.delete_bucket(Bucket="wire-empty")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"

    put = s3.put_object(Bucket=b, Key="dir/a&b.txt", Body=b"hello", ChecksumAlgorithm="SHA256",
                        Tagging="colour=blue", StorageClass="STANDARD_IA",
                        Metadata={"who": "me"})
    assert put["VersionId"] and put["ChecksumSHA256"]
    got = s3.get_object(Bucket=b, Key="dir/a&b.txt", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"hello" and got["TagCount"] == 1
    assert got["Metadata"] == {"who": "me"} and got["StorageClass"] == "STANDARD_IA"
    head = s3.head_object(Bucket=b, Key="dir/a&b.txt")
    assert head["ContentLength"] == 5 and head["VersionId"] == put["VersionId"]
    copied = s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "dir/a&b.txt"},
                            ChecksumAlgorithm="CRC32")
    assert copied["CopyObjectResult"]["ETag"] and copied["VersionId"]
    s3.put_object(Bucket=b, Key="copy", Body=b"second")

    v1 = s3.list_objects(Bucket=b, Delimiter="/")
    assert [c["Key"] for c in v1["Contents"]] == ["copy"]
    assert v1["CommonPrefixes"] == [{"Prefix": "dir/"}]
    assert v1["Contents"][0]["Owner"]["ID"] == ALICE.account_id
    v2 = s3.list_objects_v2(Bucket=b, MaxKeys=1, EncodingType="url")
    assert v2["KeyCount"] == 1 and v2["IsTruncated"] and v2["NextContinuationToken"]
    v2 = s3.list_objects_v2(Bucket=b, ContinuationToken=v2["NextContinuationToken"])
    assert [c["Key"] for c in v2["Contents"]] == ["dir/a&b.txt"]
    assert v2["Contents"][0]["ChecksumAlgorithm"] == ["SHA256"]

    s3.put_object_tagging(Bucket=b, Key="copy", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=b, Key="copy")["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.delete_object_tagging(Bucket=b, Key="copy")
    s3.put_bucket_acl(Bucket=b, ACL="public-read")
    grants = s3.get_bucket_acl(Bucket=b)["Grants"]
    assert {g["Grantee"]["Type"] for g in grants} == {"CanonicalUser", "Group"}
    s3.put_object_acl(Bucket=b, Key="copy", ACL="private")
    assert s3.get_object_acl(Bucket=b, Key="copy")["Owner"]["ID"] == ALICE.account_id

    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag"]}]})
    assert s3.get_bucket_cors(Bucket=b)["CORSRules"][0]["ExposeHeaders"] == ["ETag"]
    s3.delete_bucket_cors(Bucket=b)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/*"}]}
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=b)["Policy"]) == policy
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
    s3.delete_bucket_policy(Bucket=b)
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "r", "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "a", "Value": "1"}]}},
         "Status": "Enabled", "Expiration": {"Days": 3},
         "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}],
         "NoncurrentVersionExpiration": {"NoncurrentDays": 2}},
        {"ID": "uploads", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    rule = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]
    assert rule["Filter"]["And"]["Tags"] == [{"Key": "a", "Value": "1"}]
    assert rule["Transitions"] == [{"Days": 1, "StorageClass": "GLACIER"}]
    s3.delete_bucket_lifecycle(Bucket=b)

    upload = s3.create_multipart_upload(Bucket=b, Key="big", ChecksumAlgorithm="CRC32")
    uid = upload["UploadId"]
    assert upload["ChecksumAlgorithm"] == "CRC32"
    s3.put_object(Bucket=b, Key="source", Body=BODY)
    part1 = s3.upload_part_copy(Bucket=b, Key="big", UploadId=uid, PartNumber=1,
                                CopySource={"Bucket": b, "Key": "source"},
                                CopySourceRange=f"bytes=0-{5 * 1024 * 1024 - 1}")
    part2 = s3.upload_part(Bucket=b, Key="big", UploadId=uid, PartNumber=2, Body=b"tail",
                           ChecksumAlgorithm="CRC32")
    assert part2["ChecksumCRC32"]
    listed = s3.list_parts(Bucket=b, Key="big", UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    assert s3.list_multipart_uploads(Bucket=b)["Uploads"][0]["UploadId"] == uid
    done = s3.complete_multipart_upload(
        Bucket=b, Key="big", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": part1["CopyPartResult"]["ETag"],
             "ChecksumCRC32": part1["CopyPartResult"].get("ChecksumCRC32")},
            {"PartNumber": 2, "ETag": part2["ETag"], "ChecksumCRC32": part2["ChecksumCRC32"]}]})
    assert done["ETag"].endswith('-2"') and done["VersionId"]
    aborted = s3.create_multipart_upload(Bucket=b, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=b, Key="gone", UploadId=aborted)
    attributes = s3.get_object_attributes(Bucket=b, Key="big", ObjectAttributes=[
        "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    assert attributes["ObjectParts"]["TotalPartsCount"] == 2
    assert attributes["ObjectSize"] == 5 * 1024 * 1024 + 4 and attributes["LastModified"]

    deleted = s3.delete_object(Bucket=b, Key="copy")
    assert deleted["DeleteMarker"] is True
    versions = s3.list_object_versions(Bucket=b)
    assert [m["Key"] for m in versions["DeleteMarkers"]] == ["copy"]
    everything = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in versions["Versions"] + versions["DeleteMarkers"]]
    gone = s3.delete_objects(Bucket=b, Delete={"Objects": everything})
    assert len(gone["Deleted"]) == len(everything) and "Errors" not in gone
    s3.delete_bucket(Bucket=b)

    assert sorted(seen) == dispatch.operation_names()
