"""The rbd backend's own parts that need no cluster: the "rbd diff v1" stream read for an
upload (records of every kind, data read in several pieces, the stream kept in step when a
piece is skipped) and written for a restore, and which monitor a node is given."""

from __future__ import annotations

import io
import struct

import pytest

from sc.rbd_storage import pick_monitor
from sc.rbd_stream import DIFF_HEADER, DiffReader, DiffWriter, RbdError


def stream(*records: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(DIFF_HEADER + b"".join(records) + b"e"))  # type: ignore[arg-type]


def w(offset: int, data: bytes) -> bytes:
    return b"w" + struct.pack("<QQ", offset, len(data)) + data


def test_only_written_extents_are_pieces_and_each_reads_its_own_bytes() -> None:
    name = b"snap-1"
    reader = DiffReader(stream(b"t" + struct.pack("<I", len(name)) + name, b"s" + struct.pack("<Q", 1 << 30),
                               w(4096, b"a" * 10), b"z" + struct.pack("<QQ", 8192, 4096), w(1 << 20, b"b" * 5)),
                        size=1 << 30, data_bytes=15)
    got = []
    for offset, length in reader.pieces(4):
        view = memoryview(bytearray(length))
        reader.read_into(offset, view)
        got.append((offset, bytes(view)))
    # Cut at multiples of the piece size (the grain, at most 64 KiB), not from each extent's start.
    assert got == [(4096, b"aaaa"), (4100, b"aaaa"), (4104, b"aa"), (1 << 20, b"bbbb"), ((1 << 20) + 4, b"b")]
    reader = DiffReader(stream(w(3, b"c" * 10)), size=100, data_bytes=10)
    assert list(reader.pieces(4))[:1] == [(3, 1)]


def test_a_piece_the_reader_skips_does_not_put_the_stream_out_of_step() -> None:
    reader = DiffReader(stream(w(0, b"x" * 8), w(100, b"y" * 3)), size=200, data_bytes=11)
    pieces = reader.pieces(8)
    assert next(pieces) == (0, 8)           # not read
    assert next(pieces) == (100, 3)
    view = memoryview(bytearray(3))
    reader.read_into(100, view)
    assert bytes(view) == b"yyy"
    assert list(pieces) == []


def test_a_read_out_of_order_or_a_cut_stream_is_an_error() -> None:
    reader = DiffReader(stream(w(0, b"x" * 8)), size=8, data_bytes=8)
    pieces = reader.pieces(8)
    next(pieces)
    with pytest.raises(RbdError):
        reader.read_into(4, memoryview(bytearray(4)))
    cut = DiffReader(io.BufferedReader(io.BytesIO(DIFF_HEADER + w(0, b"x" * 8)[:20])), size=8, data_bytes=8)  # type: ignore[arg-type]
    with pytest.raises(RbdError):
        for offset, length in cut.pieces(8):
            cut.read_into(offset, memoryview(bytearray(length)))
    with pytest.raises(RbdError):
        list(DiffReader(io.BufferedReader(io.BytesIO(b"not a diff\n" + b"e")), 0, 0).pieces(8))  # type: ignore[arg-type]


def test_the_writer_sends_whole_records() -> None:
    sink = io.BytesIO()
    writer = DiffWriter(sink)
    writer.write(512, memoryview(b"hello"))
    writer.write(0, b"hi")
    assert sink.getvalue() == w(512, b"hello") + w(0, b"hi")


@pytest.mark.parametrize(("mon_host", "expected"), [
    ("v2:10.0.0.1:3300,v1:10.0.0.1:6789", ("10.0.0.1", 6789)),
    ("[v2:10.0.0.2:3300/0,v1:10.0.0.2:6789/0] [v2:10.0.0.3:3300/0,v1:10.0.0.3:6789/0]", ("10.0.0.2", 6789)),
    ("10.0.0.4", ("10.0.0.4", 6789)),
    ("ceph-a:6790, ceph-b:6790", ("ceph-a", 6790)),
    ("v2:10.0.0.5:3300", ("10.0.0.5", 3300)),
])
def test_a_node_is_given_a_v1_monitor_where_the_conf_lists_one(mon_host: str, expected: tuple[str, int]) -> None:
    assert pick_monitor(mon_host) == expected
