"""Bad input on the S3 side, against a real Walrus process: hypothesis breaks request documents
(CompleteMultipartUpload, Delete, ACLs, versioning, lifecycle, CORS, tagging, bucket
configuration, policies), declares entities in them, sends ranges, Content-MD5 and
x-amz-checksum-* values that do not fit, truncated and overlong aws-chunked bodies, names no
bucket or key may have, metadata and headers over S3's limits. Every answer is no 5xx, every
refusal a well-formed S3 error with the code S3 gives, and a refused request changes nothing:
a sentinel object keeps its bytes, ETag, metadata and ACL, its bucket its settings, the
store its files.

S3_FUZZ_EXAMPLES (default 8) sets the examples per property; raise it for a longer hunt."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.hardening.s3_fuzz import (BUCKET_NAMES, ENTITY_PROLOGUES, S3Wire, Sent,
                                     bad_digest_headers, broken, broken_chunked, broken_policy,
                                     check_answer, error_code, path_segment, plain,
                                     policy_document, range_header, stored_files,
                                     valid_bucket_name, with_entities)
from tests.support.waiting import wait_for
from tests.walrus.conftest import ALICE
from tests.walrus.process import walrus_process

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("S3_FUZZ_EXAMPLES", "8"))
BUCKET = "sentinel-bucket"
KEY = "precious"
OBJECT = f"/{BUCKET}/{KEY}"
PRECIOUS = b"the sentinel's bytes, which no refused request may change\n" * 40
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def fuzz(examples: int = EXAMPLES):  # type: ignore[no-untyped-def]
    # No shrinking: the assertion names the request that failed, and shrinking against a live
    # server costs minutes.
    return settings(max_examples=examples, deadline=None, database=None,
                    phases=[Phase.generate], suppress_health_check=list(HealthCheck))


@dataclass
class Sentinel:
    """Walrus with one bucket and one object no refused request may change, and what they
    look like (taken again after a request that was accepted)."""
    wire: S3Wire
    home: Path
    upload_id: str
    baseline: dict[str, Any] = field(default_factory=dict)

    def state(self, shows: tuple[str, ...] = ()) -> dict[str, Any]:
        """The object, its ACL, the bucket's listing, the open upload's parts and the store's
        files; and the settings named in `shows` (see SETTINGS)."""
        def seen(path: str, query: str = "") -> Any:
            response = self.wire.send("GET", path, query=query).response
            if response.status_code >= 300:
                return response.status_code, error_code(Sent(path, response))
            return response.status_code, response.content, response.headers.get("etag"), \
                sorted((k, v) for k, v in response.headers.items() if k.startswith("x-amz-meta-"))

        state = {"object": seen(OBJECT), "object-acl": seen(OBJECT, "acl"),
                 "listing": seen(f"/{BUCKET}"), "parts": seen(OBJECT, f"uploadId={self.upload_id}"),
                 "files": stored_files(self.home)}
        state.update({name: seen(*SETTINGS[name]) for name in shows})
        return state

    def settle(self, what: Sent | str, accepted: bool, shows: tuple[str, ...] = ()) -> None:
        """After one request: what it was refused must have left everything as it was (the
        settings in `shows` too: those the request could have changed)."""
        now = self.state(shows)
        before = {k: v for k, v in self.baseline.items() if k in now}
        if accepted:
            self.baseline.update(now)
            return
        changed = [k for k in now if now[k] != before.get(k)]
        what = what.what if isinstance(what, Sent) else what
        assert not changed, f"a refused request changed {changed}: {what}"


# What GET shows each setting a request may change: (path, query).
SETTINGS = {**{q: (f"/{BUCKET}", q) for q in ("acl", "versioning", "policy", "lifecycle", "cors",
                                              "uploads")},
            "object-tagging": (OBJECT, "tagging"), "buckets": ("/", "")}
ALL = tuple(SETTINGS)


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentinel]:
    home = tmp_path_factory.mktemp("s3-fuzz")
    with walrus_process(home, [ALICE]) as (url, _):
        wire = S3Wire(url, ALICE)
        assert wire.send("PUT", f"/{BUCKET}").status == 200
        assert wire.send("PUT", OBJECT, body=PRECIOUS, headers={
            "x-amz-meta-owner": "sentinel", "Content-Type": "text/plain"}).status == 200
        started = wire.send("POST", OBJECT, query="uploads")
        upload_id = started.response.text.split("<UploadId>")[1].split("</UploadId>")[0]
        assert wire.send("PUT", OBJECT, query=f"partNumber=1&uploadId={upload_id}",
                         body=b"part one").status == 200
        guard = Sentinel(wire, home, upload_id)
        guard.baseline = guard.state(ALL)
        try:
            yield guard
        finally:
            wire.close()


# ---- request documents ------------------------------------------------------------------------

ACL = (f'<AccessControlPolicy xmlns="{S3_NS}" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Owner><ID>111111111111</ID>'
       '</Owner><AccessControlList><Grant><Grantee xsi:type="CanonicalUser"><ID>111111111111</ID>'
       '<DisplayName>{TEXT}</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>'
       '<Grant><Grantee xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers'
       '</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList>'
       '</AccessControlPolicy>')
BASE = {"MalformedXML", "InvalidArgument", "InvalidRequest", "MaxMessageLengthExceeded"}


@dataclass(frozen=True)
class Document:
    method: str
    path: str
    query: str
    text: str
    codes: frozenset[str]
    shows: tuple[str, ...] = ()  # the settings (SETTINGS) it could change
    may_succeed: bool = True


def documents(upload_id: str) -> dict[str, Document]:
    def doc(method: str, path: str, query: str, text: str, *codes: str,
            shows: tuple[str, ...] = (), may_succeed: bool = True) -> Document:
        return Document(method, path, query, text, frozenset(BASE | set(codes)), shows,
                        may_succeed)

    return {
        "complete-multipart-upload": doc(
            "POST", OBJECT, f"uploadId={upload_id}",
            '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"{TEXT}0000"</ETag>'
            '</Part><Part><PartNumber>2</PartNumber><ETag>"ffff"</ETag></Part>'
            '</CompleteMultipartUpload>',
            "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload",
            shows=("uploads",), may_succeed=False),
        "delete-objects": doc(
            "POST", f"/{BUCKET}", "delete",
            "<Delete><Quiet>false</Quiet><Object><Key>{TEXT}</Key></Object><Object>"
            "<Key>victim-2</Key><VersionId>null</VersionId></Object></Delete>"),
        "object-acl": doc("PUT", OBJECT, "acl", ACL, "MalformedACLError", "AccessDenied",
                          "MissingSecurityHeader"),
        "bucket-acl": doc("PUT", f"/{BUCKET}", "acl", ACL, "MalformedACLError", "AccessDenied",
                          "MissingSecurityHeader", shows=("acl",)),
        "versioning": doc(
            "PUT", f"/{BUCKET}", "versioning",
            f'<VersioningConfiguration xmlns="{S3_NS}"><Status>Suspended</Status>'
            "<MfaDelete>Disabled</MfaDelete><Note>{TEXT}</Note></VersioningConfiguration>",
            "IllegalVersioningConfigurationException", shows=("versioning",)),
        "lifecycle": doc(
            "PUT", f"/{BUCKET}", "lifecycle",
            "<LifecycleConfiguration><Rule><ID>{TEXT}</ID><Filter><And><Prefix>victim/</Prefix>"
            "<ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter>"
            "<Status>Enabled</Status><Expiration><Days>3650</Days></Expiration>"
            "<NoncurrentVersionExpiration><NoncurrentDays>3650</NoncurrentDays>"
            "</NoncurrentVersionExpiration></Rule></LifecycleConfiguration>",
            shows=("lifecycle",)),
        "cors": doc(
            "PUT", f"/{BUCKET}", "cors",
            "<CORSConfiguration><CORSRule><ID>{TEXT}</ID>"
            "<AllowedOrigin>https://example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<AllowedHeader>*</AllowedHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>"
            "</CORSConfiguration>", shows=("cors",)),
        "object-tagging": doc(
            "PUT", OBJECT, "tagging",
            "<Tagging><TagSet><Tag><Key>{TEXT}</Key><Value>v1</Value></Tag></TagSet></Tagging>",
            "InvalidTag", "BadRequest", shows=("object-tagging",)),
        "create-bucket": doc(
            "PUT", "/victim-new-bucket", "",
            "<CreateBucketConfiguration><LocationConstraint>{TEXT}</LocationConstraint>"
            "</CreateBucketConfiguration>",
            "InvalidLocationConstraint", "IllegalLocationConstraintException",
            "BucketAlreadyOwnedByYou", "BucketAlreadyExists", shows=("buckets",)),
    }


KINDS = sorted(documents("x"))


def _send_document(sentinel: Sentinel, document: Document, body: bytes) -> Sent:
    sent = sentinel.wire.send(document.method, document.path, query=document.query, body=body)
    accepted = check_answer(sent, set(document.codes), document.may_succeed)
    if accepted and document.path == "/victim-new-bucket":
        assert sentinel.wire.send("DELETE", document.path).status == 204
    sentinel.settle(sent, accepted, document.shows)
    return sent


@pytest.mark.parametrize("kind", KINDS)
def test_broken_documents_are_refused_and_change_nothing(sentinel: Sentinel, kind: str):
    document = documents(sentinel.upload_id)[kind]

    @fuzz()
    @given(broken(plain(document.text)))
    def run(body: bytes) -> None:
        _send_document(sentinel, document, body)

    run()


@pytest.mark.parametrize("kind", KINDS)
def test_documents_declaring_entities_are_malformed_xml(sentinel: Sentinel, kind: str):
    """Billion laughs, external entities, parameter entities, an external DTD, even a harmless
    internal entity: refused as MalformedXML before anything reads the document, in UTF-8
    and in UTF-16 (where no byte spells `<!DOCTYPE`)."""
    document = documents(sentinel.upload_id)[kind]
    for entity in ENTITY_PROLOGUES:
        for encoding in ("utf-8", "utf-16"):
            body = with_entities(document.text, entity, encoding)
            sent = sentinel.wire.send(document.method, document.path, query=document.query,
                                      body=body, what=f"{kind} with {entity} in {encoding}")
            assert (sent.status, error_code(sent)) == (400, "MalformedXML"), sent.what
    sentinel.settle(sent, accepted=False, shows=ALL)


def test_broken_policies_are_malformed_and_change_nothing(sentinel: Sentinel):
    @fuzz()
    @given(broken_policy(BUCKET))
    def run(body: bytes) -> None:
        sent = sentinel.wire.send("PUT", f"/{BUCKET}", query="policy", body=body)
        accepted = check_answer(sent, {"MalformedPolicy", "InvalidArgument",
                                       "MaxMessageLengthExceeded"}, may_succeed=True)
        sentinel.settle(sent, accepted, ("policy",))

    run()
    # The document the breakages start from is a policy Walrus takes.
    sent = sentinel.wire.send("PUT", f"/{BUCKET}", query="policy",
                              body=plain(policy_document(BUCKET)))
    assert sent.status == 204, sent.response.text
    assert sentinel.wire.send("DELETE", f"/{BUCKET}", query="policy").status == 204
    sentinel.baseline = sentinel.state(ALL)


# ---- ranges -------------------------------------------------------------------------------------

def test_bad_ranges_get_the_whole_object_a_part_of_it_or_invalid_range(sentinel: Sentinel):
    expected = sentinel.baseline["object"][1]

    @fuzz(EXAMPLES * 3)
    @given(range_header())
    def run(value: str) -> None:
        sent = sentinel.wire.send("GET", OBJECT, headers={"Range": value}, what=f"Range {value!r}")
        check_answer(sent, {"InvalidRange", "InvalidArgument", "InvalidRequest"}, may_succeed=True)
        if sent.status == 416:
            assert error_code(sent) == "InvalidRange"
            assert sent.response.headers.get("content-range") in (None, f"bytes */{len(expected)}")
        elif sent.status == 206:
            first, last = sent.response.headers["content-range"].split()[1].split("/")[0] \
                .split("-")
            assert sent.response.content == expected[int(first):int(last) + 1], sent.what
        elif sent.status == 200:
            assert sent.response.content == expected, sent.what

    run()
    sentinel.settle("GETs with ranges", accepted=False)


# ---- Content-MD5 and x-amz-checksum-* ------------------------------------------------------------

DIGEST_CODES = {"InvalidDigest", "BadDigest", "InvalidRequest", "InvalidArgument"}


def test_bad_digests_store_nothing(sentinel: Sentinel):
    @fuzz(EXAMPLES * 2)
    @given(st.binary(max_size=2000), st.data(), st.sampled_from(["put", "part"]))
    def run(body: bytes, data: st.DataObject, where: str) -> None:
        headers = data.draw(bad_digest_headers(body))
        query = "" if where == "put" else f"partNumber=2&uploadId={sentinel.upload_id}"
        sent = sentinel.wire.send("PUT", OBJECT, query=query, body=body, headers=headers)
        check_answer(sent, DIGEST_CODES)
        sentinel.settle(sent, accepted=False)

    run()


def test_unknown_content_encodings_are_stored_not_failed(sentinel: Sentinel):
    @fuzz()
    @given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
           .map(str.strip))
    def run(encoding: str) -> None:
        sent = sentinel.wire.send("PUT", f"/{BUCKET}/victim-encoded", body=b"encoded?",
                                  headers={"Content-Encoding": encoding})
        if check_answer(sent, {"InvalidArgument", "InvalidRequest"}, may_succeed=True):
            read = sentinel.wire.send("GET", f"/{BUCKET}/victim-encoded")
            assert read.status == 200 and read.response.content == b"encoded?", encoding

    run()
    assert sentinel.wire.send("DELETE", f"/{BUCKET}/victim-encoded").status == 204


# ---- aws-chunked --------------------------------------------------------------------------------

CHUNKED_CODES = {"IncompleteBody", "InvalidRequest", "InvalidArgument", "BadDigest",
                 "MalformedTrailerError", "EntityTooLarge", "SignatureDoesNotMatch"}


def test_truncated_and_oversized_aws_chunked_bodies_store_nothing(sentinel: Sentinel):
    @fuzz(EXAMPLES * 2)
    @given(broken_chunked(), st.sampled_from(["put", "part"]))
    def run(case: tuple[bytes, dict[str, str], str], where: str) -> None:
        body, headers, how = case
        query = "" if where == "put" else f"partNumber=2&uploadId={sentinel.upload_id}"
        sent = sentinel.wire.send("PUT", OBJECT, query=query, body=body, headers=headers,
                                  payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                  what=f"aws-chunked {how} to {where}: {body[:120]!r} {headers}")
        check_answer(sent, CHUNKED_CODES)
        sentinel.settle(sent, accepted=False)

    run()


def test_signed_chunks_with_wrong_signatures_store_nothing(sentinel: Sentinel):
    data = b"signed chunk data"
    for signature in ("0" * 64, "", "not-hex", "f" * 63):
        body = (f"{len(data):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n"
                + f"0;chunk-signature={signature}\r\n\r\n".encode())
        sent = sentinel.wire.send("PUT", OBJECT, body=body, headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data))},
            payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", what=f"chunk-signature={signature!r}")
        check_answer(sent, {"SignatureDoesNotMatch"})
        assert sent.status == 403
    sentinel.settle(sent, accepted=False)


def test_a_body_shorter_than_its_content_length_leaves_nothing_behind(sentinel: Sentinel):
    """The client promises 3 MiB, sends 2 MiB (Walrus has started writing them to a temporary
    file) and hangs up: no object, no blob, no temporary file is left."""
    promised, sent = 3 * 1024 * 1024, 2 * 1024 * 1024
    url, headers, _ = sentinel.wire.prepare("PUT", OBJECT, body=b"x" * promised)
    parts = urlsplit(url)
    head = f"PUT {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    temporary = sentinel.home / "walrus" / "objects" / "tmp"
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as conn:
        conn.sendall(head.encode() + b"x" * sent)
        wait_for(lambda: any(temporary.glob("*.part")), timeout=60,
                 what="Walrus to start writing the upload")
        conn.shutdown(socket.SHUT_WR)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
    wait_for(lambda: not any(temporary.glob("*.part")), timeout=60,
             what="the temporary file of the cut-off upload to go")
    sentinel.settle("a PUT cut off after 2 of its 3 MiB", accepted=False)


# ---- names --------------------------------------------------------------------------------------

def test_invalid_bucket_names_are_refused(sentinel: Sentinel):
    @fuzz(EXAMPLES * 3)
    @given(BUCKET_NAMES)
    def run(name: str) -> None:
        path = "/" + path_segment(name)
        sent = sentinel.wire.send("PUT", path, what=f"CreateBucket {name!r}")
        valid = valid_bucket_name(name)
        if valid:
            assert sent.status == 200 or error_code(sent) in {"BucketAlreadyOwnedByYou"}, \
                (name, sent.response.text)
            assert sentinel.wire.send("DELETE", path).status == 204
        else:
            assert (sent.status, error_code(sent)) == (400, "InvalidBucketName"), \
                (name, sent.response.text)

    before = sentinel.state(ALL)["buckets"]
    run()
    assert sentinel.state(ALL)["buckets"] == before


def test_keys_over_1024_bytes_or_not_utf8_are_refused(sentinel: Sentinel):
    long_keys = st.text(min_size=1, max_size=30).map(
        lambda t: (t * (1100 // max(1, len(t.encode())) + 2)))
    bad_escapes = st.sampled_from(["%FF", "a%C3", "%E2%82", "%ED%A0%80", "%C0%AF", "%"])
    operations = st.sampled_from(["PUT", "GET", "DELETE", "COPY", "UPLOADS", "COPY-SOURCE"])

    @fuzz(EXAMPLES * 2)
    @given(st.one_of(long_keys.map(path_segment), bad_escapes), operations)
    def run(raw_key: str, operation: str) -> None:
        path, query, headers, method = f"/{BUCKET}/{raw_key}", "", {}, operation
        if operation == "COPY":
            method, headers = "PUT", {"x-amz-copy-source": OBJECT}
        elif operation == "UPLOADS":
            method, query = "POST", "uploads"
        elif operation == "COPY-SOURCE":
            method, path, headers = "PUT", f"/{BUCKET}/victim-copy", {
                "x-amz-copy-source": f"/{BUCKET}/{raw_key}"}
        sent = sentinel.wire.send(method, path, query=query, headers=headers,
                                  what=f"{operation} {raw_key[:60]!r}")
        check_answer(sent, {"KeyTooLongError", "InvalidURI", "InvalidArgument", "NoSuchKey"})
        sentinel.settle(sent, accepted=False)

    run()


def test_key_of_exactly_1024_bytes_is_taken(sentinel: Sentinel):
    key = "k" * 1024
    assert sentinel.wire.send("PUT", f"/{BUCKET}/{key}", body=b"edge").status == 200
    refused = sentinel.wire.send("PUT", f"/{BUCKET}/{key}k", body=b"edge")
    assert (refused.status, error_code(refused)) == (400, "KeyTooLongError")
    assert sentinel.wire.send("DELETE", f"/{BUCKET}/{key}").status == 204
    sentinel.baseline = sentinel.state(ALL)


# ---- metadata and headers -----------------------------------------------------------------------

def test_metadata_over_2_kb_and_headers_over_8_kb_are_refused(sentinel: Sentinel):
    names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40)
    values = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=3000)

    @fuzz(EXAMPLES * 2)
    @given(st.dictionaries(names, values, min_size=1, max_size=12),
           st.sampled_from(["put", "copy", "uploads", "plain-headers"]))
    def run(meta: dict[str, str], operation: str) -> None:
        size = sum(len(k) + len(v) for k, v in meta.items())
        prefix = "x-fuzz-" if operation == "plain-headers" else "x-amz-meta-"
        headers = {f"{prefix}{k}": v for k, v in meta.items()}
        if size <= 2048 + 100 and operation != "plain-headers":
            headers[f"{prefix}padding"] = "p" * (2049 - size + 100)
        elif operation == "plain-headers" and size <= 8192:
            headers["x-fuzz-padding"] = "p" * (8193 - size)
        method, query = "PUT", ""
        if operation == "copy":
            headers.update({"x-amz-copy-source": OBJECT, "x-amz-metadata-directive": "REPLACE"})
        elif operation == "uploads":
            method, query = "POST", "uploads"
        sent = sentinel.wire.send(method, OBJECT, query=query, body=b"new bytes",
                                  headers=headers, what=f"{operation} with {size} bytes of headers")
        check_answer(sent, {"MetadataTooLarge", "RequestHeaderSectionTooLarge"})
        sentinel.settle(sent, accepted=False,
                        shows=("uploads",) if operation == "uploads" else ())

    run()


def test_two_kb_of_metadata_is_taken_and_one_byte_more_is_not(sentinel: Sentinel):
    exact = {"x-amz-meta-a": "v" * 2047}
    assert sentinel.wire.send("PUT", f"/{BUCKET}/victim-meta", body=b"m",
                              headers=exact).status == 200
    read = sentinel.wire.send("GET", f"/{BUCKET}/victim-meta")
    assert read.response.headers["x-amz-meta-a"] == "v" * 2047
    refused = sentinel.wire.send("PUT", f"/{BUCKET}/victim-meta", body=b"n",
                                 headers={"x-amz-meta-ab": "v" * 2047})
    assert (refused.status, error_code(refused)) == (400, "MetadataTooLarge")
    assert sentinel.wire.send("GET", f"/{BUCKET}/victim-meta").response.content == b"m"
    assert sentinel.wire.send("DELETE", f"/{BUCKET}/victim-meta").status == 204
    sentinel.baseline = sentinel.state(ALL)


def test_the_sentinel_is_intact_at_the_end(sentinel: Sentinel):
    read = sentinel.wire.send("GET", OBJECT)
    assert read.response.content == PRECIOUS
    assert read.response.headers["x-amz-meta-owner"] == "sentinel"
    assert read.response.headers["etag"] == sentinel.baseline["object"][2]
