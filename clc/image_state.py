"""An image's state, and the ONE function that changes it (and records why).

    available ──(Walrus cannot use the bundle)──> failed
    failed    ──(Walrus can use it again)───────> available
    available | failed ──(DeregisterImage)──────> deregistered   (final)

An image is registered `available`: its manifest is read and its signature checked at
RegisterImage, and Walrus decrypts the bundle on first use. A `failed` image keeps Walrus's
reason, which DescribeImages shows as its StateReason and RunInstances refuses it with.
Instances (clc/instances.py) follow the same shape; volumes and snapshots will too."""

from __future__ import annotations

from typing import Literal, cast, get_args

from clc.models.images import Image

ImageState = Literal["available", "failed", "deregistered"]
STATES: tuple[ImageState, ...] = get_args(ImageState)
REGISTERED: ImageState = "available"  # the state RegisterImage creates an image in

# Which state may follow which; anything else is a bug, and is refused.
ALLOWED: dict[ImageState, frozenset[ImageState]] = {
    "available": frozenset({"failed", "deregistered"}),
    "failed": frozenset({"available", "deregistered"}),
    "deregistered": frozenset(),
}


class TransitionError(Exception):
    """A move the image state machine does not make (e.g. out of deregistered)."""


def transition(image: Image, state: ImageState, reason: str | None = None) -> bool:
    """Move `image` to `state` with `reason` (None clears it); False when it already is there
    (the reason is still updated: Walrus may give a newer one). Raises TransitionError for a
    move not in ALLOWED."""
    if state not in STATES:
        raise TransitionError(f"{image.id}: no image state {state!r}")
    if image.state == state:
        image.state_reason = reason
        return False
    if state not in ALLOWED.get(cast(ImageState, image.state), frozenset()):
        raise TransitionError(f"{image.id}: {image.state} -> {state} is not allowed")
    image.state, image.state_reason = state, reason
    return True
