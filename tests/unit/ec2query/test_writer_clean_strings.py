"""The writer's memo of strings that need no escaping never lets a string that does through."""

from __future__ import annotations

from services.ec2query import render_result
from services.ec2query.scalars import CLEAN_STRINGS, is_clean


def test_a_clean_string_is_remembered_and_a_dirty_one_never() -> None:
    assert is_clean("plain-value-1") and "plain-value-1" in CLEAN_STRINGS
    assert not is_clean("a<b") and "a<b" not in CLEAN_STRINGS


def test_values_written_twice_are_escaped_the_same_way_each_time() -> None:
    for _ in range(2):
        body = render_result("CreateKeyPair", {"KeyName": "x&y", "KeyFingerprint": "ab:cd",
                                               "KeyMaterial": "pem"}, "req-1")
        assert b"<keyName>x&amp;y</keyName>" in body and b"<keyFingerprint>ab:cd</keyFingerprint>" in body
