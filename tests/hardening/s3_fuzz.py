"""Hostile S3 requests for tests/hardening/test_s3_fuzz.py: a plain httpx client that signs
whatever it is given with botocore's SigV4 signer (so the body, its hash and every header are
the test's), hypothesis strategies that break request documents, ranges, digests and
aws-chunked framing, and the checks every answer must pass."""

from __future__ import annotations

import base64
import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import strategies as st

from services.messages.identity import AccessKeyInfo

REGION = "us-east-1"


class _Signer(auth.S3SigV4Auth):
    """botocore's S3 SigV4 signer, declaring the payload hash it is told to (an aws-chunked
    marker, UNSIGNED-PAYLOAD) instead of hashing the body."""

    def __init__(self, credentials: Credentials, payload: str | None) -> None:
        super().__init__(credentials, "s3", REGION)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload if self._payload is not None else super().payload(request)


@dataclass
class Sent:
    """What was sent (for the assertion message) and what came back."""
    what: str
    response: httpx.Response

    @property
    def status(self) -> int:
        return self.response.status_code


class S3Wire:
    def __init__(self, url: str, key: AccessKeyInfo) -> None:
        self.url = url.rstrip("/")
        self.credentials = Credentials(key.access_key, key.secret_key)
        self.http = httpx.Client(timeout=120)

    def close(self) -> None:
        self.http.close()

    def prepare(self, method: str, path: str, *, query: str = "", body: bytes = b"",
                headers: dict[str, str] | None = None,
                payload: str | None = None) -> tuple[str, dict[str, str], AWSRequest]:
        url = self.url + path + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        signer = _Signer(self.credentials, payload)
        signer.add_auth(request)
        prepared = request.prepare()
        return prepared.url, dict(prepared.headers), request

    def send(self, method: str, path: str, *, query: str = "", body: bytes = b"",
             headers: dict[str, str] | None = None, payload: str | None = None,
             what: str = "") -> Sent:
        url, signed, _ = self.prepare(method, path, query=query, body=body, headers=headers,
                                      payload=payload)
        response = self.http.request(method, url, content=body, headers=signed)
        return Sent(what or f"{method} {path}?{query} {dict(headers or {})!r:.300} "
                    f"body={body[:200]!r}", response)


# ---- the checks ------------------------------------------------------------------------------

def error_code(sent: Sent) -> str:
    """The code of a well-formed S3 error answer (asserting that it is one)."""
    response = sent.response
    assert response.headers.get("content-type", "").startswith("application/xml"), sent.what
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Error", (sent.what, response.content[:300])
    code = root.findtext("Code")
    assert code and root.findtext("Message") is not None and root.findtext("RequestId"), \
        (sent.what, response.content[:300])
    return code


def check_answer(sent: Sent, codes: set[str], may_succeed: bool = False) -> bool:
    """No 5xx (but S3's own 501 NotImplemented for a feature asked for and not offered); a
    refusal is a well-formed S3 error with one of `codes`. True if the request succeeded."""
    status = sent.status
    assert status < 500 or (status == 501 and error_code(sent) == "NotImplemented"), \
        (status, sent.what, sent.response.content[:400])
    if status < 300:
        assert may_succeed, f"accepted what had to be refused: {sent.what}"
        return True
    code = error_code(sent)
    assert code in codes | {"NotImplemented"}, (status, code, sent.what,
                                                sent.response.content[:400])
    return False


def stored_files(home: Path) -> set[str]:
    root = home / "walrus" / "objects"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# ---- request documents, and how they are broken ----------------------------------------------

BILLION_LAUGHS = ('<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">' + "".join(
    f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) + "]>")
ENTITY_PROLOGUES = {
    "billion-laughs": (BILLION_LAUGHS, "&i;"),
    "external-file": ('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
    "external-url": ('<!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>', "&x;"),
    "parameter-entity": ('<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "x"),
    "external-dtd": ('<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">', "x"),
    "internal-entity": ('<!DOCTYPE d [<!ENTITY e "victim-e">]>', "&e;"),
}


def with_entities(document: str, kind: str, encoding: str = "utf-8") -> bytes:
    """`document` with a DTD of `kind` declared before its root and its first `{TEXT}`
    replaced by the entity reference; in UTF-16 a byte scan for `<!DOCTYPE` sees nothing."""
    prologue, reference = ENTITY_PROLOGUES[kind]
    text = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>' + prologue
            + document.replace("{TEXT}", reference, 1).replace("{TEXT}", "x"))
    return text.encode(encoding)


def plain(document: str) -> bytes:
    return document.replace("{TEXT}", "victim-t").encode()


_JUNK = st.sampled_from([b"<", b">", b"&", b"&amp", b"]]>", b"<!--", b"<?pi?>", b"\x00", b"\xff\xfe",
                         b"\xc3\x28", b"<x>", b"</x>", b"<Part>", b"</Object>", b"\"", b"'",
                         b"<![CDATA[", "²".encode(), "١".encode(), b"99999999999999999999999",
                         b"-1", b"0", b" ", b"\r\n"])


@st.composite
def broken(draw: st.DrawFn, document: bytes) -> bytes:
    """`document` broken in one or two of the ways a careless or hostile client breaks one."""
    body = document
    for _ in range(draw(st.integers(1, 2))):
        how = draw(st.sampled_from(["truncate", "insert", "delete", "duplicate", "replace-digit",
                                    "encoding", "nest", "empty", "root", "bom", "latin1"]))
        n = len(body)
        if how == "truncate" and n:
            body = body[:draw(st.integers(0, n - 1))]
        elif how == "insert":
            at = draw(st.integers(0, n))
            body = body[:at] + draw(st.one_of(_JUNK, st.binary(max_size=8))) + body[at:]
        elif how == "delete" and n:
            at = draw(st.integers(0, n - 1))
            body = body[:at] + body[at + draw(st.integers(1, 12)):]
        elif how == "duplicate" and n:
            at = draw(st.integers(0, n - 1))
            body = body[:at] + body[at:at + draw(st.integers(1, 40))] * 2 + body[at:]
        elif how == "replace-digit":
            digit = draw(st.sampled_from(["²", "١", "٣", "Ⅻ", "-", "+1", "1e3", " 1", "0x1",
                                          "99999999999999999999"]))
            body = body.replace(b"1", digit.encode(), 1)
        elif how == "encoding":
            name = draw(st.sampled_from(["bogus", "utf-32", "ebcdic", "ascii", "utf-16", "x-mac",
                                         "iso-8859-1", ""]))
            body = f'<?xml version="1.0" encoding="{name}"?>'.encode() + body
        elif how == "nest":
            depth = draw(st.sampled_from([50, 1000, 30000]))
            at = body.find(b">") + 1
            body = body[:at] + b"<n>" * depth + b"</n>" * depth + body[at:]
        elif how == "empty":
            body = b""
        elif how == "root":
            body = body.replace(b"<", b"<Other", 1)
        elif how == "bom":
            body = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])) + body
        elif how == "latin1":
            body = body.replace(b"victim", "vïctim".encode("latin-1"), 1)
    return body


def policy_document(bucket: str) -> str:
    return ('{"Version":"2012-10-17","Statement":[{"Sid":"{TEXT}","Effect":"Allow",'
            '"Principal":{"AWS":["111111111111"]},"Action":["s3:GetObject"],'
            f'"Resource":["arn:aws:s3:::{bucket}/victim-*"],'
            '"Condition":{"IpAddress":{"aws:SourceIp":"10.1.0.0/16"},'
            '"NumericLessThan":{"s3:max-keys":"10"}}}]}')


@st.composite
def broken_policy(draw: st.DrawFn, bucket: str) -> bytes:
    base = plain(policy_document(bucket))
    how = draw(st.sampled_from(["bytes", "deep-list", "deep-object", "deep-statement", "types",
                                "huge"]))
    if how == "bytes":
        return draw(broken(base))
    if how == "deep-list":
        depth = draw(st.sampled_from([100, 990, 5000]))
        return b"[" * depth + b"]" * depth
    if how == "deep-object":
        depth = draw(st.sampled_from([100, 2000]))
        return b'{"a":' * depth + b"1" + b"}" * depth
    if how == "deep-statement":
        depth = draw(st.sampled_from([10, 1500]))
        inner = "[" * depth + "]" * depth
        return base.replace(b'"Action":["s3:GetObject"]', f'"Action":{inner}'.encode())
    if how == "types":
        field = draw(st.sampled_from([b'"Effect":"Allow"', b'"Action":["s3:GetObject"]',
                                      b'"Principal":{"AWS":["111111111111"]}',
                                      b'"Version":"2012-10-17"', b'"aws:SourceIp":"10.1.0.0/16"']))
        name = field.split(b":", 1)[0]
        value = draw(st.sampled_from([b"null", b"1", b"[]", b"{}", b"[[1]]", b'{"x":{"y":[]}}',
                                      b"true", b"1e999", b'"\\ud800"']))
        return base.replace(field, name + b":" + value)
    return b'{"Statement":[' + b'{"Effect":"Allow"},' * 3000 + b"{}]}"


# ---- ranges, digests --------------------------------------------------------------------------

# Header values are what HTTP carries: printable ASCII (a client refuses to send anything else).
_NUMBER = st.one_of(st.integers(0, 40).map(str), st.integers(-5, 10**25).map(str),
                    st.sampled_from(["", " ", "-0", "+1", "1.5", "0x10", "1_0", "9" * 40, "abc"]))


@st.composite
def range_header(draw: st.DrawFn) -> str:
    """Range values, mostly near the grammar (bytes=a-b, suffixes, lists), some far from it
    (stripped: HTTP clients refuse to send a value with spaces around it)."""
    return draw(_range_header()).strip()


@st.composite
def _range_header(draw: st.DrawFn) -> str:
    unit = draw(st.sampled_from(["bytes", "bytes", "Bytes", "items", "", "bytes "]))
    specs = draw(st.lists(st.tuples(_NUMBER, _NUMBER, st.sampled_from(["-", "--", "", "~"])),
                          min_size=1, max_size=3))
    ranges = ",".join(f"{a}{dash}{b}" for a, b, dash in specs)
    if draw(st.booleans()):
        return f"{unit}={ranges}"
    return draw(st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                  max_size=30), st.just(f"{unit}{ranges}")))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_ALGORITHMS = ["crc32", "crc32c", "sha1", "sha256"]
_DIGEST_SIZES = {"crc32": 4, "crc32c": 4, "sha1": 20, "sha256": 32}


def _checksum(algorithm: str, body: bytes) -> bytes:
    import zlib

    import crc32c

    if algorithm == "crc32":
        return zlib.crc32(body).to_bytes(4, "big")
    if algorithm == "crc32c":
        return crc32c.crc32c(body).to_bytes(4, "big")
    return hashlib.new(algorithm, body).digest()


@st.composite
def bad_digest_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Integrity headers of which at least one is wrong for `body` (malformed, or well-formed
    and not the body's)."""
    headers: dict[str, str] = {}
    md5 = hashlib.md5(body).digest()
    kind = draw(st.sampled_from(["md5-wrong", "md5-malformed", "checksum-wrong",
                                 "checksum-malformed", "checksum-unknown", "sdk-unknown",
                                 "both"]))
    if kind in ("md5-wrong", "both"):
        wrong = draw(st.binary(min_size=16, max_size=16).filter(lambda d: d != md5))
        headers["Content-MD5"] = b64(wrong)
    if kind == "md5-malformed":
        headers["Content-MD5"] = draw(st.one_of(
            st.text(alphabet=string.ascii_letters + "+/=!", max_size=30),
            st.binary(min_size=0, max_size=40).filter(lambda d: len(d) != 16).map(b64),
            st.just(md5.hex())))
    if kind in ("checksum-wrong", "both"):
        algorithm = draw(st.sampled_from(_ALGORITHMS))
        size = _DIGEST_SIZES[algorithm]
        right = _checksum(algorithm, body)
        headers[f"x-amz-checksum-{algorithm}"] = b64(draw(st.binary(
            min_size=size, max_size=size).filter(lambda d: d != right)))
    if kind == "checksum-malformed":
        algorithm = draw(st.sampled_from(_ALGORITHMS))
        headers[f"x-amz-checksum-{algorithm}"] = draw(st.sampled_from(
            ["", "!!!", "AAAA", "====", "a" * 100, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]))
    if kind == "checksum-unknown":
        name = draw(st.sampled_from(["md5", "crc64nvme2", "sha512", "x", "crc32-"]))
        headers[f"x-amz-checksum-{name}"] = "AAAAAA=="
    if kind == "sdk-unknown":
        headers["x-amz-sdk-checksum-algorithm"] = draw(st.sampled_from(["MD5", "SHA512", "", "x"]))
        headers["Content-MD5"] = b64(draw(st.binary(min_size=16, max_size=16)
                                          .filter(lambda d: d != md5)))
    return headers


# ---- aws-chunked ------------------------------------------------------------------------------

def chunked(pieces: list[bytes], trailers: dict[str, str] | None = None) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n"
    out += b"".join(f"{k}:{v}\r\n".encode() for k, v in (trailers or {}).items())
    return out + b"\r\n"


@st.composite
def broken_chunked(draw: st.DrawFn) -> tuple[bytes, dict[str, str], str]:
    """An aws-chunked upload (unsigned chunks, CRC32 trailer) that is truncated, longer than
    it says, or badly framed: (body, headers, how)."""
    import zlib

    pieces = draw(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4))
    data = b"".join(pieces)
    crc = b64(zlib.crc32(data).to_bytes(4, "big"))
    headers = {"Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
               "x-amz-decoded-content-length": str(len(data))}
    whole = chunked(pieces, {"x-amz-checksum-crc32": crc})
    how = draw(st.sampled_from(["truncated", "longer-than-declared", "shorter-than-declared",
                                "chunk-overruns", "bad-size", "negative-size", "huge-size",
                                "no-final-chunk", "after-final", "trailer-missing",
                                "trailer-wrong", "trailer-garbled", "decoded-not-a-number",
                                "decoded-too-large", "long-line"]))
    if how == "truncated":
        body = whole[:draw(st.integers(0, len(whole) - 1))]
    elif how == "longer-than-declared":
        body = whole
        headers["x-amz-decoded-content-length"] = str(max(0, len(data) - draw(st.integers(1, 50))))
    elif how == "shorter-than-declared":
        body = whole
        headers["x-amz-decoded-content-length"] = str(len(data) + draw(st.integers(1, 10**6)))
    elif how == "chunk-overruns":
        body = b"%x\r\n%s\r\n" % (len(data), data + b"extra") + chunked([], {"x-amz-checksum-crc32": crc})
    elif how == "bad-size":
        body = draw(st.sampled_from([b"zz", b"", b"1.5", b" ", b"0x10", "١".encode()])) + \
            b"\r\n" + whole
    elif how == "negative-size":
        body = b"-5\r\nhello\r\n" + whole
    elif how == "huge-size":
        body = b"ffffffffffffffff\r\n" + data + b"\r\n"
    elif how == "no-final-chunk":
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    elif how == "after-final":
        body = whole + draw(st.sampled_from([b"5\r\nhello\r\n", b"x", b"0\r\n\r\n"]))
    elif how == "trailer-missing":
        body = chunked(pieces)
    elif how == "trailer-wrong":
        body = chunked(pieces, {"x-amz-checksum-crc32": b64(
            (zlib.crc32(data) ^ 1).to_bytes(4, "big"))})
    elif how == "trailer-garbled":
        body = whole.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-crc32 ")
    elif how == "decoded-not-a-number":
        body = whole
        headers["x-amz-decoded-content-length"] = draw(st.sampled_from(["", "ten", "-1", "1e3",
                                                                        "1_0", "+5", "0x10"]))
    elif how == "decoded-too-large":
        body = whole
        headers["x-amz-decoded-content-length"] = str(6 * 1024 ** 3)
    else:
        body = b"1;" + b"x" * 5000 + b"\r\na\r\n" + whole
    return body, headers, how


# ---- names ------------------------------------------------------------------------------------

def valid_bucket_name(name: str) -> bool:
    """S3's rules for a new bucket's name (general purpose buckets)."""
    import ipaddress
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
        return False
    if ".." in name or ".-" in name or "-." in name or name.startswith("xn--") \
            or name.endswith("-s3alias") or name == "internal":
        return False
    try:
        ipaddress.IPv4Address(name)
        return False
    except ValueError:
        return True


BUCKET_NAMES = st.one_of(
    st.text(alphabet=string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=70),
    st.text(alphabet=string.ascii_letters + string.digits + "._-~!$ ", min_size=1, max_size=70),
    st.text(min_size=1, max_size=20),
    st.sampled_from(["ab", "a" * 64, "a" * 63, "192.168.1.1", "xn--bucket", "bucket-s3alias",
                     "my..bucket", "my.-bucket", "-bucket", "bucket-", "Bucket", "bu_cket",
                     "internal", "b\u00fccket", "a.b", "ab.", ".ab"]),
)


def path_segment(name: str) -> str:
    """A name as one path segment: every byte outside [A-Za-z0-9_-] %-escaped, so that no
    dot segment is normalised away on the client side and no '/' splits it."""
    return "".join(c if c in string.ascii_letters + string.digits + "_-" else
                   "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in name)
