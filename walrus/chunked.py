"""The `aws-chunked` content encoding, decoded incrementally as the body arrives.

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
    [<trailer-name>:<value>\\r\\n ...]\\r\\n

With signed chunks every chunk is checked against `sign(previous_signature, chunk)`, the chain
starting at the seed signature of the request; a signed chunk is held until its signature is
checked only in the sense that the caller does not commit anything before `finish()`."""

from __future__ import annotations

import re
from collections.abc import Callable

from services.errors import S3Error

MAX_LINE = 4096
_HEX = re.compile(r"[0-9a-fA-F]{1,16}")
_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _incomplete() -> S3Error:
    return S3Error("IncompleteBody", "The request body terminated unexpectedly.")


def _malformed(why: str) -> S3Error:
    return S3Error("InvalidRequest", f"Malformed aws-chunked body: {why}.")


class ChunkedDecoder:
    def __init__(self, sign: Callable[[str, bytes], str] | None = None,
                 seed_signature: str = "") -> None:
        self._sign = sign
        self._previous = seed_signature
        self._buf = bytearray()
        self._state = _HEADER
        self._remaining = 0
        self._chunk_sig: str | None = None
        self._chunk = bytearray()
        self.trailers: dict[str, str] = {}
        # The trailer lines as sent, less the trailer signature, for its check.
        self.trailer_text = b""
        self.last_signature = seed_signature

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        buf += data
        pos = 0
        while True:
            if self._state in (_HEADER, _TRAILER):
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > MAX_LINE:
                        raise _malformed("line too long")
                    break
                line = bytes(buf[pos:end]).decode("latin-1")
                pos = end + 2
                if self._state == _HEADER:
                    self._start_chunk(line)
                else:
                    self._trailer_line(line)
            elif self._state == _DATA:
                take = min(self._remaining, len(buf) - pos)
                if take == 0:
                    break
                piece = bytes(buf[pos:pos + take])
                pos += take
                self._remaining -= take
                if self._sign is not None:
                    self._chunk += piece
                out.append(piece)
                if self._remaining == 0:
                    self._state = _DATA_END
            elif self._state == _DATA_END:
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise _malformed("chunk data longer than its declared size")
                pos += 2
                self._end_chunk()
                self._state = _HEADER
            else:  # _DONE
                if bytes(buf[pos:]).strip():
                    raise _malformed("data after the final chunk")
                pos = len(buf)
                break
        del buf[:pos]
        return out

    def finish(self) -> dict[str, str]:
        if self._state != _DONE:
            raise _incomplete()
        return self.trailers

    def _start_chunk(self, line: str) -> None:
        size_text, _, extension = line.partition(";")
        if not _HEX.fullmatch(size_text.strip()):
            # int(..., 16) would also take '-5', '+a', '0x10' and '1_0'.
            raise _malformed(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text.strip(), 16)
        self._chunk_sig = None
        if extension:
            name, _, value = extension.partition("=")
            if name.strip() == "chunk-signature":
                self._chunk_sig = value.strip()
        if self._sign is not None and self._chunk_sig is None:
            raise S3Error("SignatureDoesNotMatch", "A chunk carries no chunk-signature.", 403)
        self._chunk = bytearray()
        if size == 0:
            self._end_chunk()
            self._state = _TRAILER
        else:
            self._remaining = size
            self._state = _DATA

    def _end_chunk(self) -> None:
        if self._sign is None:
            return
        expected = self._sign(self._previous, bytes(self._chunk))
        if expected != self._chunk_sig:
            raise S3Error("SignatureDoesNotMatch", "The chunk signature we calculated does not "
                          "match the signature you provided.", 403)
        self._previous = expected
        self.last_signature = expected

    def _trailer_line(self, line: str) -> None:
        if line == "":
            self._state = _DONE
            return
        name, sep, value = line.partition(":")
        if not sep:
            raise _malformed(f"bad trailer line {line[:40]!r}")
        name = name.strip().lower()
        self.trailers[name] = value.strip()
        if name != "x-amz-trailer-signature":
            self.trailer_text += f"{name}:{value.strip()}\n".encode("latin-1")
