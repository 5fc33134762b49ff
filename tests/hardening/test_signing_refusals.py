"""Unsigned, mis-signed, expired, clock-skewed and replayed-then-altered requests, built with
botocore's own signers and sent raw, against a real CLC (EC2 Query: SigV4 header and presigned
query, SigV2 query) and a real Walrus (S3: SigV4 header and presigned query, SigV2 header and
query). Each is refused with AWS's code and status, and changes nothing: no key pair appears
in the CLC, the sentinel object keeps its bytes and ETag, no new object or blob appears."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from services.messages.identity import AccessKeyInfo
from tests.hardening.s3_fuzz import stored_files
from tests.support.clc import RunningClc, running_clc
from tests.support.signing import clock
from tests.walrus.conftest import ALICE
from tests.walrus.process import walrus_process

pytestmark = pytest.mark.timeout(300)

EC2_VERSION = "2016-11-15"
BUCKET = "signed-bucket"
KEY = "precious"
PRECIOUS = b"bytes no refused request may change\n" * 20
UNKNOWN = AccessKeyInfo(access_key="AKIANOBODY0000000009", secret_key="nobody-secret-key-000000",
                        account_id="999999999999", account_name="nobody", user_name="admin")
_names = itertools.count()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def minutes(n: float) -> dt.datetime:
    return now() + dt.timedelta(minutes=n)


def _credentials(key: AccessKeyInfo, secret: str | None = None) -> Credentials:
    return Credentials(key.access_key, secret if secret is not None else key.secret_key)


def _send(request: AWSRequest, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    """Send a signed request as signed, or with its body or headers swapped afterwards."""
    prepared = request.prepare()
    # Content-Length is httpx's to write, for the body actually sent.
    sent_headers = {k: v for k, v in {**dict(prepared.headers), **(headers or {})}.items()
                    if k.lower() != "content-length"}
    content = body if body is not None else prepared.body
    return httpx.request(prepared.method, prepared.url, content=content, headers=sent_headers,
                         timeout=60)


# ---- EC2 ----------------------------------------------------------------------------------------

@dataclass
class Ec2:
    clc: RunningClc

    @property
    def region(self) -> str:
        return self.clc.config.REGION

    def request(self, params: dict[str, str], method: str = "POST") -> AWSRequest:
        params = {"Version": EC2_VERSION, **params}
        if method == "POST":
            return AWSRequest(method="POST", url=self.clc.url + "/", data=urlencode(params),
                              headers={"Content-Type": "application/x-www-form-urlencoded; "
                                                       "charset=utf-8"})
        return AWSRequest(method="GET", url=self.clc.url + "/", params=params)

    def v2_request(self, params: dict[str, str]) -> AWSRequest:
        return AWSRequest(method="GET", url=self.clc.url + "/",
                          params={"Version": EC2_VERSION, **params})

    def key_names(self) -> set[str]:
        return {k["KeyName"] for k in self.clc.ec2().describe_key_pairs()["KeyPairs"]}


@pytest.fixture(scope="module")
def ec2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ec2]:
    with running_clc(tmp_path_factory.mktemp("signing-clc")) as clc:
        yield Ec2(clc)


def ec2_error(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of a well-formed EC2 error; (status, "") for anything else."""
    root = ElementTree.fromstring(response.content)
    if root.tag != "Response" or not root.findtext("RequestID"):
        return response.status_code, ""
    return response.status_code, root.findtext("Errors/Error/Code") or ""


def _new_key_name() -> str:
    return f"never-{next(_names)}"


def _v4(ec2: Ec2, request: AWSRequest, key: AccessKeyInfo, secret: str | None = None,
        at: dt.datetime | None = None) -> AWSRequest:
    with clock(at or now()):
        auth.SigV4Auth(_credentials(key, secret), "ec2", ec2.region).add_auth(request)
    return request


def _v4_query(ec2: Ec2, request: AWSRequest, key: AccessKeyInfo, expires: int = 300,
              at: dt.datetime | None = None) -> AWSRequest:
    with clock(at or now()):
        auth.SigV4QueryAuth(_credentials(key), "ec2", ec2.region, expires=expires) \
            .add_auth(request)
    return request


class _SigV2(auth.SigV2Auth):
    """botocore's EC2 SigV2 signer, stamping the Timestamp it is given, or an Expires time
    instead (a presigned SigV2 request), where botocore stamps the real time."""

    def __init__(self, credentials: Credentials, at: dt.datetime | None = None,
                 expires: dt.datetime | None = None) -> None:
        super().__init__(credentials)
        self._at, self._expires = at, expires

    def add_auth(self, request: AWSRequest) -> AWSRequest:
        params = request.params
        params.update(AWSAccessKeyId=self.credentials.access_key, SignatureVersion="2",
                      SignatureMethod="HmacSHA256")
        if self._expires is not None:
            params["Expires"] = self._expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            params["Timestamp"] = (self._at or now()).strftime("%Y-%m-%dT%H:%M:%SZ")
        params.pop("Signature", None)
        _, params["Signature"] = self.calc_signature(request, params)
        return request


def _v2(request: AWSRequest, key: AccessKeyInfo, secret: str | None = None,
        at: dt.datetime | None = None, expires: dt.datetime | None = None) -> AWSRequest:
    return _SigV2(_credentials(key, secret), at, expires).add_auth(request)


AUTH_FAILURE = (401, "AuthFailure")
EXPIRED = (400, "RequestExpired")


def _ec2_cases(ec2: Ec2, name: str) -> dict[str, tuple[httpx.Response, tuple[int, str]]]:
    admin = ec2.clc.admin
    create = {"Action": "CreateKeyPair", "KeyName": name}
    cases: dict[str, tuple[httpx.Response, tuple[int, str]]] = {}

    def case(label: str, response: httpx.Response, expected: tuple[int, str]) -> None:
        cases[label] = (response, expected)

    case("unsigned", _send(ec2.request(create)), (401, "MissingAuthenticationToken"))
    case("v4 wrong secret", _send(_v4(ec2, ec2.request(create), admin, "wrong-secret")),
         AUTH_FAILURE)
    case("v4 unknown key", _send(_v4(ec2, ec2.request(create), UNKNOWN)), AUTH_FAILURE)
    case("v4 20 minutes slow", _send(_v4(ec2, ec2.request(create), admin, at=minutes(-20))),
         EXPIRED)
    case("v4 20 minutes fast", _send(_v4(ec2, ec2.request(create), admin, at=minutes(20))),
         EXPIRED)
    signed = _v4(ec2, ec2.request({"Action": "CreateKeyPair", "KeyName": "decoy"}), admin)
    case("v4 replayed, body altered",
         _send(signed, body=urlencode({"Version": EC2_VERSION, **create}).encode()),
         AUTH_FAILURE)
    signed = _v4(ec2, ec2.request(create), admin)
    later = (now() + dt.timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    case("v4 replayed, date altered", _send(signed, headers={"X-Amz-Date": later}), AUTH_FAILURE)
    case("v4 presigned, expired",
         _send(_v4_query(ec2, ec2.request(create, "GET"), admin, expires=60, at=minutes(-5))),
         EXPIRED)
    case("v4 presigned, signed 20 minutes ahead",
         _send(_v4_query(ec2, ec2.request(create, "GET"), admin, expires=60, at=minutes(20))),
         EXPIRED)
    case("v4 presigned, wrong key",
         _send(_v4_query(ec2, ec2.request(create, "GET"), UNKNOWN)), AUTH_FAILURE)
    case("v2 wrong secret", _send(_v2(ec2.v2_request(create), admin, "wrong-secret")),
         AUTH_FAILURE)
    case("v2 unknown key", _send(_v2(ec2.v2_request(create), UNKNOWN)), AUTH_FAILURE)
    case("v2 20 minutes slow", _send(_v2(ec2.v2_request(create), admin, at=minutes(-20))),
         EXPIRED)
    request = _v2(ec2.v2_request(create), admin, expires=minutes(-1))
    case("v2 past its Expires", _send(request), EXPIRED)
    signed = _v2(ec2.v2_request({"Action": "CreateKeyPair", "KeyName": "decoy"}), admin)
    signed.params["KeyName"] = name
    case("v2 replayed, parameter altered", _send(signed), AUTH_FAILURE)
    signed = _v2(ec2.v2_request(create), admin)
    signed.params["Timestamp"] = (now() + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    case("v2 replayed, timestamp altered", _send(signed), AUTH_FAILURE)
    return cases


def test_ec2_refuses_each_unsigned_mis_signed_expired_skewed_or_altered_request(ec2: Ec2):
    name = _new_key_name()
    cases = _ec2_cases(ec2, name)
    wrong = {label: (response.status_code, response.text[:200])
             for label, (response, expected) in cases.items()
             if ec2_error(response) != expected}
    assert not wrong, wrong
    assert name not in ec2.key_names() and "decoy" not in ec2.key_names()


def test_ec2_takes_the_same_requests_signed_right(ec2: Ec2):
    """The refusals above are about the signature alone: each request, signed right, is
    served (so the test would fail if the endpoint refused everything)."""
    admin = ec2.clc.admin
    names = [_new_key_name() for _ in range(5)]
    sent = [
        _send(_v4(ec2, ec2.request({"Action": "CreateKeyPair", "KeyName": names[0]}), admin,
                  at=minutes(-10))),
        _send(_v4_query(ec2, ec2.request({"Action": "CreateKeyPair", "KeyName": names[1]}, "GET"),
                        admin, expires=600, at=minutes(-5))),
        _send(_v2(ec2.v2_request({"Action": "CreateKeyPair", "KeyName": names[2]}), admin)),
        _send(_v2(ec2.v2_request({"Action": "CreateKeyPair", "KeyName": names[3]}), admin,
                  at=minutes(-10))),
        _send(_v2(ec2.v2_request({"Action": "CreateKeyPair", "KeyName": names[4]}), admin,
                  expires=minutes(5))),
    ]
    assert [r.status_code for r in sent] == [200] * 5, [r.text[:200] for r in sent]
    assert set(names) <= ec2.key_names()


# ---- S3 -----------------------------------------------------------------------------------------

@dataclass
class S3:
    url: str
    home: Path

    def request(self, method: str, key: str = KEY, body: bytes = b"",
                headers: dict[str, str] | None = None) -> AWSRequest:
        return AWSRequest(method=method, url=f"{self.url}/{BUCKET}/{key}", data=body,
                          headers=dict(headers or {}))

    def state(self) -> tuple[object, ...]:
        signed = _s3_v4(self.request("GET"), ALICE)
        read = _send(signed)
        listing = _send(_s3_v4(AWSRequest(method="GET", url=f"{self.url}/{BUCKET}"), ALICE))
        return read.status_code, read.content, read.headers.get("etag"), listing.content, \
            stored_files(self.home)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    home = tmp_path_factory.mktemp("signing-walrus")
    with walrus_process(home, [ALICE]) as (url, _):
        s3 = S3(url, home)
        assert _send(_s3_v4(AWSRequest(method="PUT", url=f"{url}/{BUCKET}"), ALICE)) \
            .status_code == 200
        assert _send(_s3_v4(s3.request("PUT", body=PRECIOUS), ALICE)).status_code == 200
        yield s3


def _s3_v4(request: AWSRequest, key: AccessKeyInfo, secret: str | None = None,
           at: dt.datetime | None = None) -> AWSRequest:
    with clock(at or now()):
        auth.S3SigV4Auth(_credentials(key, secret), "s3", "us-east-1").add_auth(request)
    return request


def _s3_v4_query(request: AWSRequest, key: AccessKeyInfo, secret: str | None = None,
                 expires: int = 300, at: dt.datetime | None = None) -> AWSRequest:
    with clock(at or now()):
        auth.S3SigV4QueryAuth(_credentials(key, secret), "s3", "us-east-1", expires=expires) \
            .add_auth(request)
    return request


class _HmacV1At(auth.HmacV1Auth):
    """botocore's SigV2 header signer with the Date it is given."""

    def __init__(self, credentials: Credentials, at: dt.datetime) -> None:
        super().__init__(credentials)
        self._at = at

    def _get_date(self) -> str:
        return self._at.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _s3_v2(request: AWSRequest, key: AccessKeyInfo, secret: str | None = None,
           at: dt.datetime | None = None) -> AWSRequest:
    _HmacV1At(_credentials(key, secret), at or now()).add_auth(request)
    return request


def _s3_v2_query(request: AWSRequest, key: AccessKeyInfo, secret: str | None = None,
                 expires: int = 300) -> AWSRequest:
    auth.HmacV1QueryAuth(_credentials(key, secret), expires=expires).add_auth(request)
    return request


def s3_error(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of a well-formed S3 error; (status, "") for anything else."""
    if not response.content:
        return response.status_code, ""
    root = ElementTree.fromstring(response.content)
    if root.tag != "Error" or not root.findtext("RequestId"):
        return response.status_code, ""
    return response.status_code, root.findtext("Code") or ""


MISMATCH = (403, "SignatureDoesNotMatch")
UNKNOWN_KEY = (403, "InvalidAccessKeyId")
SKEWED = (403, "RequestTimeTooSkewed")
DENIED = (403, "AccessDenied")


def _s3_cases(s3: S3) -> dict[str, tuple[httpx.Response, tuple[int, str]]]:
    new = b"bytes of an attacker\n"
    cases: dict[str, tuple[httpx.Response, tuple[int, str]]] = {}

    def case(label: str, response: httpx.Response, expected: tuple[int, str]) -> None:
        cases[label] = (response, expected)

    for label, method, key in (("put", "PUT", KEY), ("put new", "PUT", "never-written"),
                               ("delete", "DELETE", KEY)):
        body = new if method == "PUT" else b""
        case(f"{label}: unsigned", _send(s3.request(method, key, body)), DENIED)
        case(f"{label}: v4 wrong secret",
             _send(_s3_v4(s3.request(method, key, body), ALICE, "wrong-secret")), MISMATCH)
        case(f"{label}: v4 unknown key", _send(_s3_v4(s3.request(method, key, body), UNKNOWN)),
             UNKNOWN_KEY)
        case(f"{label}: v4 20 minutes slow",
             _send(_s3_v4(s3.request(method, key, body), ALICE, at=minutes(-20))), SKEWED)
        case(f"{label}: v4 20 minutes fast",
             _send(_s3_v4(s3.request(method, key, body), ALICE, at=minutes(20))), SKEWED)
        case(f"{label}: v4 presigned, expired",
             _send(_s3_v4_query(s3.request(method, key), ALICE, expires=60, at=minutes(-5)),
                   body=body), (403, "AccessDenied"))
        case(f"{label}: v4 presigned, wrong secret",
             _send(_s3_v4_query(s3.request(method, key), ALICE, "wrong-secret"), body=body),
             MISMATCH)
        case(f"{label}: v4 presigned, unknown key",
             _send(_s3_v4_query(s3.request(method, key), UNKNOWN), body=body), UNKNOWN_KEY)
        case(f"{label}: v2 wrong secret",
             _send(_s3_v2(s3.request(method, key, body), ALICE, "wrong-secret")), MISMATCH)
        case(f"{label}: v2 unknown key", _send(_s3_v2(s3.request(method, key, body), UNKNOWN)),
             UNKNOWN_KEY)
        case(f"{label}: v2 20 minutes slow",
             _send(_s3_v2(s3.request(method, key, body), ALICE, at=minutes(-20))), SKEWED)
        case(f"{label}: v2 presigned, expired",
             _send(_s3_v2_query(s3.request(method, key), ALICE, expires=-60), body=body),
             (403, "AccessDenied"))
        case(f"{label}: v2 presigned, wrong secret",
             _send(_s3_v2_query(s3.request(method, key), ALICE, "wrong-secret"), body=body),
             MISMATCH)

    # Replays of a request signed for something else.
    signed = _s3_v4(s3.request("PUT", "decoy", b"decoy bytes"), ALICE)
    case("v4 replayed, body altered", _send(signed, body=new),
         (400, "XAmzContentSHA256Mismatch"))
    signed = _s3_v4(s3.request("PUT", KEY, new), ALICE)
    later = (now() + dt.timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    case("v4 replayed, date altered", _send(signed, headers={"X-Amz-Date": later}), MISMATCH)
    signed = _s3_v4(s3.request("PUT", "decoy", new, {"x-amz-meta-note": "harmless"}), ALICE)
    case("v4 replayed, signed header altered",
         _send(signed, headers={"x-amz-meta-note": "evil"}), MISMATCH)
    prepared = _s3_v4(s3.request("PUT", "decoy", new), ALICE).prepare()
    case("v4 replayed to another key",
         httpx.request("PUT", prepared.url.replace("/decoy", f"/{KEY}"), content=new,
                       headers=dict(prepared.headers)), MISMATCH)
    presigned = _s3_v4_query(s3.request("PUT", "decoy"), ALICE).prepare()
    case("v4 presigned, replayed to another key",
         httpx.put(presigned.url.replace("/decoy", f"/{KEY}"), content=new), MISMATCH)
    signed = _s3_v2(s3.request("PUT", KEY, new), ALICE)
    case("v2 replayed, date altered",
         _send(signed, headers={"Date": (now() + dt.timedelta(minutes=1)).strftime(
             "%a, %d %b %Y %H:%M:%S GMT")}), MISMATCH)
    presigned = _s3_v2_query(s3.request("PUT", "decoy"), ALICE).prepare()
    case("v2 presigned, replayed to another key",
         httpx.put(presigned.url.replace("/decoy", f"/{KEY}"), content=new), MISMATCH)
    return cases


def test_s3_refuses_each_unsigned_mis_signed_expired_skewed_or_altered_request(s3: S3):
    before = s3.state()
    cases = _s3_cases(s3)
    wrong = {label: (response.status_code, response.text[:200])
             for label, (response, expected) in cases.items()
             if s3_error(response) != expected}
    assert not wrong, wrong
    assert s3.state() == before
    assert before[1] == PRECIOUS


def test_s3_takes_the_same_requests_signed_right(s3: S3):
    body = b"rightly signed\n"
    sent = [
        _send(_s3_v4(s3.request("PUT", "right-v4", body), ALICE, at=minutes(-10))),
        _send(_s3_v4_query(s3.request("PUT", "right-v4-query"), ALICE, expires=600,
                           at=minutes(-5)), body=body),
        _send(_s3_v2(s3.request("PUT", "right-v2", body), ALICE, at=minutes(-10))),
        _send(_s3_v2_query(s3.request("PUT", "right-v2-query"), ALICE), body=body),
    ]
    assert [r.status_code for r in sent] == [200] * 4, [r.text[:300] for r in sent]
    for key in ("right-v4", "right-v4-query", "right-v2", "right-v2-query"):
        read = _send(_s3_v4(s3.request("GET", key), ALICE))
        assert read.content == body
        assert _send(_s3_v4(s3.request("DELETE", key), ALICE)).status_code == 204
