"""Random values that follow a botocore shape, for round-trip tests of the EC2 codec.

Inputs satisfy botocore's ParamValidator (required members, `min` lengths and ranges), so the
real EC2Serializer accepts them; outputs only need to be parseable."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from botocore.model import ListShape, Shape, StructureShape

UTC = dt.timezone.utc

# Markup, quotes, non-ASCII (including astral), whitespace: what tends to break XML and forms.
_PIECES = ["a", "Z", "09", "-", "_", ".", " ", "&", "<", ">", "&amp;", "]]>", '"', "'", "=",
           "+", "%20", "/", "?", "é", "ß", "中文", "😀", "\u200b", "\t", "\n", "\r\n", "\r",
           "i-0123abcd", "sg-1"]
_WHITESPACE = [" ", "  ", "\t", "\n", " \n\t ", "\r"]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


class ShapeGen:
    def __init__(self, seed: int | str, *, for_output: bool, max_depth: int = 6,
                 max_list: int = 3) -> None:
        self.rng = random.Random(seed)
        self.for_output = for_output
        self.max_depth = max_depth
        self.max_list = max_list

    def value(self, shape: Shape, depth: int = 0, nonempty: bool = False) -> Any:
        kind = shape.type_name
        if isinstance(shape, StructureShape):
            return self.structure(shape, depth, nonempty)
        if isinstance(shape, ListShape):
            return self.list(shape, depth, nonempty)
        return getattr(self, f"scalar_{kind}")(shape)

    def structure(self, shape: StructureShape, depth: int, nonempty: bool) -> dict[str, Any]:
        required = set(shape.required_members) if not self.for_output else set()
        keep = max(0.15, 0.7 - depth * 0.12) if depth < self.max_depth else 0.0
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            if name in required:
                result[name] = self.value(member, depth + 1, nonempty=True)
            elif self.rng.random() < keep:
                result[name] = self.value(member, depth + 1)
        if nonempty and not normalise_input(result) and shape.members:
            name = self.rng.choice(list(shape.members))
            result[name] = self.value(shape.members[name], depth + 1, nonempty=True)
        return result

    def list(self, shape: ListShape, depth: int, nonempty: bool) -> list[Any]:
        low = int(shape.metadata.get("min", 0))
        if nonempty:
            low = max(low, 1)
        high = max(low, self.max_list if depth < self.max_depth else low)
        return [self.value(shape.member, depth + 1, nonempty=nonempty)
                for _ in range(self.rng.randint(low, high))]

    def scalar_string(self, shape: Shape) -> str:
        roll = self.rng.random()
        if roll < 0.08:
            text = ""
        elif roll < 0.16:
            text = self.rng.choice(_WHITESPACE)
        else:
            text = "".join(self.rng.choice(_PIECES) for _ in range(self.rng.randint(1, 6)))
            if not self.for_output and self.rng.random() < 0.1:
                text += "\x00\x07"  # legal in a form body, never in XML
        low = int(shape.metadata.get("min", 0))
        return text + "x" * max(0, low - len(text))

    scalar_character = scalar_string

    def scalar_integer(self, shape: Shape) -> int:
        low = int(shape.metadata.get("min", -2**31))
        return self.rng.choice([low, max(low, 0), max(low, 0) + self.rng.randint(0, 10**6)])

    def scalar_long(self, shape: Shape) -> int:
        low = int(shape.metadata.get("min", -2**62))
        return self.rng.choice([low, max(low, 0), max(low, 0) + self.rng.randint(0, 2**50)])

    def scalar_boolean(self, shape: Shape) -> bool:
        return self.rng.random() < 0.5

    def scalar_double(self, shape: Shape) -> float:
        low = float(shape.metadata.get("min", -1e6))
        return self.rng.choice([max(low, 0.0), max(low, 0.5), max(low, 0.1) * 3,
                                max(low, self.rng.uniform(-1e6, 1e6)), max(low, 1.5e-7)])

    scalar_float = scalar_double

    def scalar_timestamp(self, shape: Shape) -> dt.datetime:
        seconds = self.rng.randint(0, 4_000_000_000)
        # Responses carry milliseconds; requests carry whatever the caller gave.
        micro = self.rng.choice([0, self.rng.randint(0, 999) * 1000,
                                 0 if self.for_output else self.rng.randint(0, 999_999)])
        return _EPOCH + dt.timedelta(seconds=seconds, microseconds=micro)

    def scalar_blob(self, shape: Shape) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 12)))


def normalise_input(value: Any) -> Any:
    """What survives EC2Serializer: empty lists and empty structures send nothing at all."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            item = normalise_input(item)
            if item is not None and item != [] and item != {}:
                result[key] = item
        return result
    if isinstance(value, list):
        items = [normalise_input(item) for item in value]
        return [item for item in items if item != [] and item != {}]
    return value
