"""Hypothesis strategies for EC2 Query requests, generated from botocore's own input shapes,
then broken on the wire: values of the wrong type, out of range, too long, missing, repeated,
unknown parameters and bytes that are not UTF-8. And a plain httpx client that signs each
request with botocore's SigV4 signer and checks the answer is a well-formed EC2 answer."""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import httpx
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.serialize import create_serializer
from hypothesis import strategies as st

from services.ec2query import model

NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
MAX_DEPTH = 3
OPTIONAL_MEMBERS = 5

# Integers EC2 would take, and those no field takes (negative, beyond 64 bits).
INTEGERS = st.one_of(st.integers(0, 20), st.integers(-2**31, 2**31), st.integers(-2**70, 2**70),
                     st.sampled_from([0, -1, 2**31, 2**63, 10**30]))
WRONG_TYPE = st.sampled_from(["abc", "", "1.5", "1e9", "true", "NaN", "-", "0x10", " 1", "[]",
                              "null", "2024-13-45T99:99:99Z", "%", "\x00", "１"])
TEXT = st.one_of(st.text(max_size=20),
                 st.text(alphabet=string.ascii_letters + string.digits + "-_.:/ ", max_size=40),
                 st.just("x" * 300), st.just("y" * 5000))


def id_like(prefixes: list[str]) -> st.SearchStrategy[str]:
    """Strings in the shape of resource ids (some well-formed, some nearly)."""
    return st.builds(lambda p, h: f"{p}-{h}", st.sampled_from(prefixes),
                     st.text(alphabet="0123456789abcdef", min_size=0, max_size=18))


PREFIXES = ["i", "r", "emi", "eki", "eri", "ami", "vol", "snap", "sg", "eipalloc", "eipassoc",
            "key", "vpc", "subnet"]


@dataclass(frozen=True)
class Known:
    """Real names and ids of the cloud under test, so some values reach past 'not found'."""
    values: tuple[str, ...] = ()


def _string(shape: Shape, known: Known) -> st.SearchStrategy[str]:
    options: list[st.SearchStrategy[str]] = [TEXT, id_like(PREFIXES)]
    if shape.enum:
        options.append(st.sampled_from(list(shape.enum)))
        options.append(st.sampled_from(list(shape.enum)))
    if known.values:
        options.append(st.sampled_from(list(known.values)))
    return st.one_of(options)


_STRATEGIES: dict[tuple[str, str, int, Known], st.SearchStrategy[Any]] = {}


def python_value(shape: Shape, known: Known, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value of the shape's own type, as a boto3 caller would pass it (the botocore
    serializer then writes it as the CLI would). Built once per shape and depth."""
    key = (shape.name, shape.type_name, depth, known)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _python_value(shape, known, depth)
    return _STRATEGIES[key]


def _python_value(shape: Shape, known: Known, depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if depth > MAX_DEPTH and isinstance(shape, (StructureShape, ListShape, MapShape)):
        return st.just({} if not isinstance(shape, ListShape) else [])
    if isinstance(shape, StructureShape):
        members = {name: python_value(member, known, depth + 1)
                   for name, member in shape.members.items()}
        required = set(shape.required_members)
        optional = sorted(n for n in members if n not in required)
        # A few optional members per request: drawing every member of a wide shape
        # (RunInstances has dozens, nested) cost half a second a request, and a request
        # with a handful of them reaches as far into the handler.
        return st.tuples(
            st.fixed_dictionaries({n: s for n, s in members.items() if n in required}),
            st.sets(st.sampled_from(optional), max_size=OPTIONAL_MEMBERS) if optional else st.just(set()),
        ).flatmap(lambda drawn: st.fixed_dictionaries(
            {n: members[n] for n in sorted(drawn[1])}).map(lambda extra: {**drawn[0], **extra}))
    if isinstance(shape, ListShape):
        return st.lists(python_value(shape.member, known, depth + 1), max_size=3)
    if isinstance(shape, MapShape):
        return st.dictionaries(python_value(shape.key, known, depth + 1),
                               python_value(shape.value, known, depth + 1), max_size=2)
    if kind == "string":
        return _string(shape, known)
    if kind in ("integer", "long"):
        return INTEGERS
    if kind == "boolean":
        return st.booleans()
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "timestamp":
        return st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(3000, 1, 1))
    if kind == "blob":
        return st.binary(max_size=64)
    return st.none()


_serializer = create_serializer("ec2", include_validation=False)


def wire_pairs(action: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The Query pairs botocore's EC2 serializer writes for `params` (Action and Version
    first)."""
    operation = model.operation(action)
    body = _serializer.serialize_to_request(params, operation)["body"]
    return [(str(k), str(v)) for k, v in body.items()]


@dataclass(frozen=True)
class Wire:
    """One request as sent: form pairs (str or raw bytes) for the body, some in the query."""
    action: str
    pairs: tuple[tuple[str, str | bytes], ...]
    in_query: bool = False
    what: str = ""


UNKNOWN_NAMES = st.sampled_from(["Bogus", "Filter.1.Bogus", "InstanceId.0", "InstanceId.01",
                                 "X.1.Y.2.Z", ".", "..", "InstanceId.", "MaxResults.1", "Foo.-1",
                                 "Filter.99999999999999999999.Name"])
BAD_ACTIONS = st.sampled_from(["", "Nope", "describeinstances", "DescribeInstances ", "\u00e9"])
BAD_VERSIONS = st.sampled_from(["", "2009-11-30", "bogus", "9999-99-99"])
DRY_RUN = st.sampled_from(["true", "false", "maybe", ""])
OUT_OF_RANGE = st.sampled_from(["-1", str(-2**63), str(2**63), str(2**64), str(10**40), "0"])
TOO_LONG = st.sampled_from([256, 4096, 70_000])
BROKEN_UTF8 = st.sampled_from([b"\xff\xfe", b"\xc3(", b"ab\x80cd", b"\xed\xa0\x80",
                               b"\xf8\x88\x80\x80\x80", b"\x00"])
WHOLE = ["as generated", "unknown parameter", "no Version", "no Action", "unknown Action",
         "odd Version", "DryRun"]
PER_PARAM = ["missing", "repeated", "wrong type", "out of range", "too long", "broken UTF-8"]
KINDS = st.sampled_from(WHOLE + PER_PARAM * 2)
INDEX = st.integers(0, 2**16)


def _mutate(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str | bytes]]]:
    """One way to break a well-typed request, named (the strategies are module constants:
    hypothesis validates a new strategy on its first draw, which would cost more than the
    request)."""
    head, rest = pairs[:2], pairs[2:]  # Action, Version
    kind = draw(KINDS)
    if kind in PER_PARAM and not rest:
        kind = "as generated"
    if kind == "as generated":
        return kind, list(pairs)
    if kind == "unknown parameter":
        return kind, [*pairs, (draw(UNKNOWN_NAMES), draw(TEXT))]
    if kind == "no Version":
        return kind, [head[0], *rest]
    if kind == "no Action":
        return kind, [head[1], *rest]
    if kind == "unknown Action":
        return kind, [("Action", draw(BAD_ACTIONS)), head[1], *rest]
    if kind == "odd Version":
        return kind, [head[0], ("Version", draw(BAD_VERSIONS)), *rest]
    if kind == "DryRun":
        return kind, [*pairs, ("DryRun", draw(DRY_RUN))]
    i = draw(INDEX) % len(rest)
    name = rest[i][0]
    if kind == "missing":
        return f"missing {name}", [*head, *rest[:i], *rest[i + 1:]]
    if kind == "repeated":
        return f"repeated {name}", [*pairs, (name, draw(TEXT))]
    value: str | bytes = {"wrong type": lambda: draw(WRONG_TYPE),
                          "out of range": lambda: draw(OUT_OF_RANGE),
                          "too long": lambda: "z" * draw(TOO_LONG),
                          "broken UTF-8": lambda: draw(BROKEN_UTF8)}[kind]()
    changed: list[tuple[str, str | bytes]] = [*head, *rest]
    changed[2 + i] = (name, value)
    return f"{kind} in {name}", changed


@st.composite
def requests(draw: st.DrawFn, action: str, known: Known) -> Wire:
    shape = model.operation(action).input_shape
    params = draw(python_value(shape, known)) if shape is not None else {}
    pairs = wire_pairs(action, params)
    what, broken = _mutate(draw, pairs)
    return Wire(action, tuple(broken), in_query=draw(st.booleans()), what=what)


def encode(pairs: tuple[tuple[str, str | bytes], ...]) -> bytes:
    """application/x-www-form-urlencoded, bytes values percent-encoded as they are (so the
    server sees bytes that are not UTF-8)."""
    parts = []
    for key, value in pairs:
        raw = value if isinstance(value, bytes) else value.encode()
        parts.append(f"{quote(key, safe='')}={quote(raw, safe='')}")
    return "&".join(parts).encode()


class Signer:
    """Signs and sends EC2 requests over one keep-alive connection."""

    def __init__(self, url: str, access_key: str, secret_key: str, region: str) -> None:
        self.url = url.rstrip("/") + "/"
        self.credentials = Credentials(access_key, secret_key)
        self.region = region
        self.http = httpx.Client(timeout=60)

    def send(self, wire: Wire) -> httpx.Response:
        encoded = encode(wire.pairs)
        if wire.in_query and len(encoded) < 8000:
            request = AWSRequest(method="GET", url=f"{self.url}?{encoded.decode()}", data=b"")
        else:
            request = AWSRequest(method="POST", url=self.url, data=encoded, headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        auth.SigV4Auth(self.credentials, "ec2", self.region).add_auth(request)
        prepared = request.prepare()
        return self.http.request(prepared.method, prepared.url, content=prepared.body or b"",
                                 headers=dict(prepared.headers))

    def call(self, action: str, **params: str) -> httpx.Response:
        pairs = (("Action", action), ("Version", model.api_version()), *params.items())
        return self.send(Wire(action, tuple(pairs)))

    def close(self) -> None:
        self.http.close()


def check_answer(wire: Wire, response: httpx.Response) -> bool:
    """Assert the answer is a well-formed EC2 success or error; True for a success."""
    context = (f"{wire.action} ({wire.what}) {encode(wire.pairs)[:600]!r} -> "
               f"{response.status_code}: {response.text[:500]}")
    assert response.status_code < 500, context
    root = ElementTree.fromstring(response.content)
    if response.status_code == 200:
        assert root.tag == f"{NS}{wire.action}Response", context
        request_id = root.find(f"{NS}requestId")
        assert request_id is not None and request_id.text, context
        return True
    assert 400 <= response.status_code < 500, context
    assert root.tag == "Response", context
    code = root.find("Errors/Error/Code")
    message = root.find("Errors/Error/Message")
    assert code is not None and code.text and code.text.strip() == code.text, context
    assert message is not None and message.text, context
    assert root.find("RequestID") is not None, context
    return False


def form(params: dict[str, str]) -> str:
    return urlencode(params)
