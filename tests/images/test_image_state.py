"""The image state machine: every move it makes, every move it refuses, and the reason it
records (DescribeImages' StateReason and RunInstances' refusal read it)."""

from __future__ import annotations

import pytest

from clc.image_state import MOVES, REGISTERED, STATES, TransitionError, transition
from clc.models.images import Image


def _image(state: str, reason: str | None = None) -> Image:
    return Image(id="emi-0123abcd", account_id="123456789012", kind="machine", name="test",
                 location="b/k.manifest.xml", state=state, state_reason=reason)


@pytest.mark.parametrize(("start", "end"), [
    ("available", "failed"), ("failed", "available"),
    ("available", "deregistered"), ("failed", "deregistered")])
def test_allowed_moves_change_the_state_and_record_the_reason(start: str, end: str) -> None:
    image = _image(start, reason="earlier reason")
    assert transition(image, end, f"now {end}") is True  # type: ignore[arg-type]
    assert (image.state, image.state_reason) == (end, f"now {end}")


@pytest.mark.parametrize(("start", "end"), [
    ("deregistered", "available"), ("deregistered", "failed")])
def test_nothing_leaves_deregistered(start: str, end: str) -> None:
    image = _image(start, reason="deregistered by its owner")
    with pytest.raises(TransitionError, match=f"image emi-0123abcd: {start} -> {end} is not allowed"):
        transition(image, end, "revived")  # type: ignore[arg-type]
    assert (image.state, image.state_reason) == (start, "deregistered by its owner")


def test_an_unknown_state_is_refused() -> None:
    image = _image("available")
    with pytest.raises(TransitionError, match="no image state 'pending'"):
        transition(image, "pending")  # type: ignore[arg-type]
    assert image.state == "available"


def test_staying_put_keeps_the_newest_reason() -> None:
    image = _image("failed", reason="Bundle.PartCorrupt: part 0")
    assert transition(image, "failed", "Bundle.PartCorrupt: part 0") is False
    assert transition(image, "failed", "Bundle.PartMissing: part 1") is True
    assert (image.state, image.state_reason) == ("failed", "Bundle.PartMissing: part 1")
    # Available again clears the reason: DescribeImages shows no StateReason for it.
    assert transition(image, "available") is True
    assert image.state_reason is None


def test_a_final_state_keeps_its_reason() -> None:
    image = _image("deregistered", reason="deregistered by its owner")
    assert transition(image, "deregistered", "again") is False
    assert image.state_reason == "deregistered by its owner"


def test_the_table_covers_every_state_and_names_only_states() -> None:
    assert set(MOVES.allowed) == set(STATES) and REGISTERED in STATES
    assert all(set(targets) <= set(STATES) for targets in MOVES.allowed.values())
    assert [s for s in STATES if MOVES.final(s)] == ["deregistered"]
