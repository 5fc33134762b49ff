"""Storing one of a bucket's settings (CORS rules, lifecycle rules, policy, versioning): one
small write transaction, and the bucket cache told, so the next request sees the new value."""

from __future__ import annotations

from typing import Any

from walrus.context import S3Context
from walrus.models import Bucket

SETTINGS = ("cors", "lifecycle", "policy", "versioning")


def store_setting(ctx: S3Context, bucket: Bucket, setting: str, value: Any, decided: str) -> None:
    """Set `setting` of `bucket` to `value` (None removes it); `decided` goes to the trace."""
    if setting not in SETTINGS:
        raise ValueError(f"{setting} is not a bucket setting")
    with ctx.writing() as db:
        row = db.get(Bucket, bucket.name)
        if row is not None:
            setattr(row, setting, value)
    ctx.buckets.forget(bucket.name)
    ctx.decided(decided)
