"""Small helpers the Walrus tests share."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def s3_error(call, *args, **kwargs) -> ClientError:  # type: ignore[no-untyped-def]
    """Run a boto3 call that must fail; return its ClientError."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value


def code_and_status(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def keys_of(s3, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
