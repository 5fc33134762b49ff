"""The aws-chunked decoder fed byte by byte and in random pieces: framing never depends on how
the network cut the body."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.errors import S3Error
from walrus.chunked import ChunkedDecoder


def encode(chunks: list[bytes], trailers: dict[str, str]) -> bytes:
    out = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks if c)
    lines = "".join(f"{k}:{v}\r\n" for k, v in trailers.items())
    return out + b"0\r\n" + lines.encode() + b"\r\n"


def decode(body: bytes, cuts: list[int]) -> tuple[bytes, dict[str, str]]:
    decoder = ChunkedDecoder()
    out, last = [], 0
    for cut in sorted(set(c % (len(body) + 1) for c in cuts)) + [len(body)]:
        out += decoder.feed(body[last:cut])
        last = cut
    return b"".join(out), decoder.finish()


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=6),
       cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12))
def test_any_split_decodes_the_same(chunks: list[bytes], cuts: list[int]) -> None:
    trailers = {"x-amz-checksum-crc32": "AAAAAA=="}
    data, found = decode(encode(chunks, trailers), cuts)
    assert data == b"".join(chunks)
    assert found == trailers


def test_byte_by_byte() -> None:
    body = encode([b"hello ", b"world"], {})
    data, trailers = decode(body, list(range(len(body))))
    assert data == b"hello world" and trailers == {}


@pytest.mark.parametrize("body,code", [
    (b"5\r\nhello\r\n", "IncompleteBody"),                 # no final chunk
    (b"5\r\nhel", "IncompleteBody"),                       # cut inside data
    (b"zz\r\nhello\r\n0\r\n\r\n", "InvalidRequest"),      # size is not hex
    (b"3\r\nhello\r\n0\r\n\r\n", "InvalidRequest"),       # data longer than declared
    (b"0\r\n\r\ntrailing garbage", "InvalidRequest"),     # bytes after the end
    (b"0\r\nnot a header\r\n\r\n", "InvalidRequest"),     # trailer without a colon
])
def test_malformed_bodies(body: bytes, code: str) -> None:
    decoder = ChunkedDecoder()
    with pytest.raises(S3Error) as caught:
        decoder.feed(body)
        decoder.finish()
    assert caught.value.code == code
