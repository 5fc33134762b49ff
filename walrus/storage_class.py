"""Storage classes: which names S3 accepts, the one a request asks for, and how it is reported.
Walrus keeps every object on the same disks, so a class is kept and reported, not acted on."""

from __future__ import annotations

from collections.abc import Mapping

from services.errors import S3Error

STANDARD = "STANDARD"
CLASSES = frozenset({"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                     "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR",
                     "SNOW", "EXPRESS_ONEZONE"})


def requested(headers: Mapping[str, str]) -> str:
    """The x-amz-storage-class of a request (STANDARD when absent); InvalidStorageClass for a
    name S3 does not know."""
    value = headers.get("x-amz-storage-class", STANDARD).strip()
    if value not in CLASSES:
        raise S3Error("InvalidStorageClass", "The storage class you specified is not valid",
                      StorageClassRequested=value)
    return value


def header(value: str | None) -> dict[str, str]:
    """S3 names the class on GET and HEAD for every class but STANDARD."""
    return {"x-amz-storage-class": value} if value and value != STANDARD else {}
