"""Small helpers the Walrus tests share."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def s3_client(url: str, access_key: str, secret_key: str, ca_bundle: str | None = None,
              **config: object):  # type: ignore[no-untyped-def]
    """A path-style boto3 S3 client that does not retry, so a test sees the first answer."""
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", verify=ca_bundle,
                        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"total_max_attempts": 1}, **config))


def s3_error(call, *args, **kwargs) -> ClientError:  # type: ignore[no-untyped-def]
    """Run a boto3 call that must fail; return its ClientError."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value


def code_and_status(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def keys_of(s3, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
