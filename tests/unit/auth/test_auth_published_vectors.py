"""AWS's published examples: the SigV4 test suite, the S3 SigV4 and SigV2 documentation."""

from __future__ import annotations

import hashlib
from email.utils import parsedate_to_datetime

import pytest
from auth_clients import utc

from services.auth import (
    SCHEME_V2_S3_HEADER,
    SCHEME_V2_S3_QUERY,
    SCHEME_V4_HEADER,
    SCHEME_V4_QUERY,
    RequestView,
    chunk_signature,
    verify_ec2,
    verify_s3,
)
from services.errors import AuthError

# --- the SigV4 test suite (aws-sig-v4-test-suite), verified as the CLC would -------------

SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_NOW = utc(2015, 8, 30, 12, 36)
SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def suite_secrets(access_key: str) -> str | None:
    return SUITE_SECRET if access_key == SUITE_KEY else None


SUITE = [
    # name, method, raw path, raw query, extra headers, body, signed headers, signature
    ("get-vanilla", "GET", "/", "", {}, b"", "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", {}, b"",
     "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-unreserved", "GET", "/", f"{UNRESERVED}={UNRESERVED}", {}, b"",
     "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    ("get-unreserved", "GET", f"/{UNRESERVED}", "", {}, b"", "host;x-amz-date",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    ("get-header-key-duplicate", "GET", "/", "", {"my-header1": "value2,value2,value1"}, b"",
     "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ("get-header-value-trim", "GET", "/", "",
     {"my-header1": " value1", "my-header2": ' "a   b   c"'}, b"",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("post-vanilla", "POST", "/", "", {}, b"", "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("post-x-www-form-urlencoded", "POST", "/", "",
     {"content-type": "application/x-www-form-urlencoded"}, b"Param1=value1",
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
]  # fmt: skip


def suite_view(method: str, path: str, query: str, extra: dict[str, str], body: bytes,
               signed: str, signature: str) -> RequestView:  # fmt: skip
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z", **extra}
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders={signed}, Signature={signature}"
    )
    return RequestView(method, path, query, headers, body)


@pytest.mark.parametrize("case", SUITE, ids=[case[0] for case in SUITE])
def test_sigv4_suite_vector_verifies(case: tuple) -> None:
    identity = verify_ec2(suite_view(*case[1:]), suite_secrets, now=SUITE_NOW)
    assert identity.access_key == SUITE_KEY
    assert identity.scheme == SCHEME_V4_HEADER
    assert (identity.region, identity.service) == ("us-east-1", "service")
    assert identity.scope == "20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize("case", SUITE, ids=[case[0] for case in SUITE])
def test_sigv4_suite_vector_with_one_wrong_hex_digit_fails(case: tuple) -> None:
    signature = case[-1]
    wrong = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    with pytest.raises(AuthError) as err:
        verify_ec2(suite_view(*case[1:-1], wrong), suite_secrets, now=SUITE_NOW)
    assert (err.value.code, err.value.status) == ("AuthFailure", 401)


# --- S3's SigV4 documentation (examplebucket, 2013-05-24) --------------------------------

S3_KEY = "AKIAIOSFODNN7EXAMPLE"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3_NOW = utc(2013, 5, 24)
EMPTY = hashlib.sha256(b"").hexdigest()


def s3_secrets(access_key: str) -> str | None:
    return S3_SECRET if access_key == S3_KEY else None


def s3_header_view(method: str, path: str, query: str, headers: dict[str, str], signed: str,
                   signature: str, host: str = "examplebucket.s3.amazonaws.com") -> RequestView:  # fmt: skip
    all_headers = {"host": host, "x-amz-date": "20130524T000000Z", **headers}
    all_headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={S3_KEY}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={signature}"
    )
    return RequestView(method, path, query, all_headers)


def test_s3_get_object_with_range() -> None:
    view = s3_header_view(
        "GET", "/test.txt", "", {"range": "bytes=0-9", "x-amz-content-sha256": EMPTY},
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    )  # fmt: skip
    identity = verify_s3(view, s3_secrets, now=S3_NOW)
    assert identity is not None and identity.access_key == S3_KEY
    assert identity.payload_hash == EMPTY


def test_s3_put_object_whose_key_is_percent_encoded_on_the_wire() -> None:
    body_hash = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    view = s3_header_view(
        "PUT", "/test%24file.text", "",
        {"date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY",
         "x-amz-content-sha256": body_hash},
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    )  # fmt: skip
    identity = verify_s3(view, s3_secrets, now=S3_NOW)
    assert identity is not None and identity.payload_hash == body_hash


def test_s3_get_bucket_lifecycle_signs_a_bare_subresource_as_key_equals() -> None:
    view = s3_header_view(
        "GET", "/", "lifecycle", {"x-amz-content-sha256": EMPTY},
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    )  # fmt: skip
    assert verify_s3(view, s3_secrets, now=S3_NOW) is not None


def test_s3_list_objects_sorts_the_query() -> None:
    view = s3_header_view(
        "GET", "/", "max-keys=2&prefix=J", {"x-amz-content-sha256": EMPTY},
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    )  # fmt: skip
    assert verify_s3(view, s3_secrets, now=S3_NOW) is not None


PRESIGNED_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def test_s3_presigned_url_from_the_documentation() -> None:
    view = RequestView("GET", "/test.txt", PRESIGNED_QUERY, {"host": "examplebucket.s3.amazonaws.com"})
    identity = verify_s3(view, s3_secrets, now=utc(2013, 5, 24, 23, 59))
    assert identity is not None and identity.scheme == SCHEME_V4_QUERY
    assert identity.payload_hash == "UNSIGNED-PAYLOAD"


def test_s3_presigned_url_from_the_documentation_expires_after_a_day() -> None:
    view = RequestView("GET", "/test.txt", PRESIGNED_QUERY, {"host": "examplebucket.s3.amazonaws.com"})
    with pytest.raises(AuthError) as err:
        verify_s3(view, s3_secrets, now=utc(2013, 5, 25, 0, 0, 1))
    assert (err.value.code, err.value.status, err.value.message) == ("AccessDenied", 403, "Request has expired")


def test_s3_chunked_upload_example_seed_and_chunk_signatures() -> None:
    view = s3_header_view(
        "PUT", "/examplebucket/chunkObject.txt", "",
        {"x-amz-storage-class": "REDUCED_REDUNDANCY", "content-encoding": "aws-chunked",
         "x-amz-decoded-content-length": "66560", "content-length": "66824",
         "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        host="s3.amazonaws.com",
    )  # fmt: skip
    identity = verify_s3(view, s3_secrets, now=S3_NOW)
    assert identity is not None and identity.seed_signature is not None
    assert identity.payload_hash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    first = chunk_signature(identity, identity.seed_signature, b"a" * 65536)
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    second = chunk_signature(identity, first, b"a" * 1024)
    assert second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    last = chunk_signature(identity, second, b"")
    assert last == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    # A chunk whose bytes were changed no longer continues the chain.
    assert chunk_signature(identity, identity.seed_signature, b"b" + b"a" * 65535) != first


# --- S3's SigV2 documentation (johnsmith, 2007-03-27) -------------------------------------

V2_EXAMPLES = [
    # name, method, raw path, raw query, headers, signature
    ("object-get", "GET", "/photos/puppy.jpg", "",
     {"date": "Tue, 27 Mar 2007 19:36:42 +0000"}, "bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
    ("object-put", "PUT", "/photos/puppy.jpg", "",
     {"date": "Tue, 27 Mar 2007 21:15:45 +0000", "content-type": "image/jpeg",
      "content-length": "94328"}, "MyyxeRY7whkBe+bq8fHCL/2kKUg="),
    ("list", "GET", "/", "prefix=photos&max-keys=50&marker=puppy",
     {"date": "Tue, 27 Mar 2007 19:42:41 +0000"}, "htDYFYduRNen8P9ZfE/s9SuKy0U="),
    ("fetch-acl", "GET", "/", "acl",
     {"date": "Tue, 27 Mar 2007 19:44:46 +0000"}, "c2WLPFtWHVgbEmeEG93a4cG37dM="),
]  # fmt: skip


@pytest.mark.parametrize("case", V2_EXAMPLES, ids=[case[0] for case in V2_EXAMPLES])
def test_s3_sigv2_documentation_example_on_a_virtual_host(case: tuple) -> None:
    _, method, path, query, headers, signature = case
    all_headers = {"host": "johnsmith.s3.amazonaws.com", **headers,
                   "authorization": f"AWS {S3_KEY}:{signature}"}  # fmt: skip
    view = RequestView(method, path, query, all_headers, virtual_host_bucket="johnsmith")
    identity = verify_s3(view, s3_secrets, now=parsedate_to_datetime(headers["date"]))
    assert identity is not None and identity.scheme == SCHEME_V2_S3_HEADER


def test_s3_sigv2_documentation_example_path_style_gives_the_same_resource() -> None:
    view = RequestView(
        "GET", "/johnsmith/photos/puppy.jpg", "",
        {"host": "s3.amazonaws.com", "date": "Tue, 27 Mar 2007 19:36:42 +0000",
         "authorization": f"AWS {S3_KEY}:bWq2s1WEIj+Ydj0vQ697zp+IXMU="},
    )  # fmt: skip
    assert verify_s3(view, s3_secrets, now=utc(2007, 3, 27, 19, 40)) is not None


def test_s3_sigv2_documentation_query_string_example() -> None:
    query = f"AWSAccessKeyId={S3_KEY}&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
    view = RequestView(
        "GET", "/photos/puppy.jpg", query, {"host": "johnsmith.s3.amazonaws.com"},
        virtual_host_bucket="johnsmith",
    )  # fmt: skip
    identity = verify_s3(view, s3_secrets, now=utc(2007, 3, 29))
    assert identity is not None and identity.scheme == SCHEME_V2_S3_QUERY
