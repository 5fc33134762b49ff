"""An image's state, and the ONE function that changes it (and records why).

    available ──(Walrus cannot use the bundle)──> failed
    failed    ──(Walrus can use it again)───────> available
    available | failed ──(DeregisterImage)──────> deregistered   (final)

An image is registered `available`: its manifest is read and its signature checked at
RegisterImage, and Walrus decrypts the bundle on first use. A `failed` image keeps Walrus's
reason, which DescribeImages shows as its StateReason and RunInstances refuses it with.
The shape is clc/states.py's, as for instances (clc/instances.py)."""

from __future__ import annotations

from typing import Literal, cast, get_args

from clc.models.images import Image
from clc.states import Moves, TransitionError

__all__ = ["MOVES", "REGISTERED", "STATES", "ImageState", "TransitionError", "state", "transition"]

ImageState = Literal["available", "failed", "deregistered"]
STATES: tuple[ImageState, ...] = get_args(ImageState)
REGISTERED: ImageState = "available"  # the state RegisterImage creates an image in

# The image's state machine: which state may follow which. Anything else is a bug.
MOVES = Moves[ImageState]("image", {
    "available":    {"failed", "deregistered"},
    "failed":       {"available", "deregistered"},
    "deregistered": set(),
})


def state(image: Image) -> ImageState:
    return cast(ImageState, image.state)


def transition(image: Image, to: ImageState, reason: str | None = None) -> bool:
    """THE place an image's state and reason change. Moving to another state is checked against
    MOVES (TransitionError otherwise) and records `reason` (None clears it). Staying put still
    takes the newest reason (Walrus may give a newer one); a final state never changes.
    True when anything changed."""
    if to not in STATES:
        raise TransitionError(f"image {image.id}: no image state {to!r}")
    before = state(image)
    if before == to:
        if MOVES.final(to) or image.state_reason == reason:
            return False
    else:
        MOVES.check(image.id, before, to)
        image.state = to
    image.state_reason = reason
    return True
