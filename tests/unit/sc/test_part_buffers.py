"""The SC's snapshot part buffers: reused while an upload runs, let go when none does (an
idle SC kept five 16 MiB buffers for the next snapshot), and the zero-run check that works
a megabyte at a time instead of against a zeroed copy of a whole part."""

from __future__ import annotations

from sc.snapstore import _all_zeros, _Buffers


def test_buffers_are_reused_while_out_and_let_go_when_all_are_back() -> None:
    buffers = _Buffers(size=16, count=3)
    filling = buffers.take()
    sent = buffers.take()
    buffers.give_back(sent)
    assert buffers.kept() == 1  # the upload still fills a part: the sent one waits for reuse
    assert buffers.take() is sent
    buffers.give_back(sent)
    buffers.give_back(filling)
    assert buffers.kept() == 0


def test_zero_runs_are_found_across_megabytes_and_a_late_byte_is_seen() -> None:
    size = (3 << 20) + 5
    data = bytearray(size + 7)
    assert _all_zeros(data, 7, size)
    data[7 + size - 1] = 1
    assert not _all_zeros(data, 7, size)
    assert _all_zeros(data, 0, 7 + size - 1)
