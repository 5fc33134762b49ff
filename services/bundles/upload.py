"""Putting a bundle into Walrus (S3) and reading a manifest back, with boto3.

The parts go first and the manifest last, so a manifest in a bucket always has its parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.bundles.build import BuiltBundle
from services.messages.identity import AccessKeyInfo

Uploaded = Callable[[int], None]  # called with the number of bytes just sent


def s3_client(endpoint: str, key: AccessKeyInfo, region: str = "eucalyptus") -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 2}))


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as again:  # a concurrent upload created it first
            if again.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise


def upload_bundle(s3: Any, bundle: BuiltBundle, bucket: str, key_prefix: str = "",
                  progress: Uploaded | None = None) -> str:
    """Upload the parts, then the manifest; return the ImageLocation (`bucket/…manifest.xml`)."""
    ensure_bucket(s3, bucket)
    prefix = key_prefix.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    for path in bundle.part_paths:
        s3.upload_file(str(path), bucket, prefix + path.name, Callback=progress)
    manifest_key = prefix + bundle.manifest_path.name
    s3.upload_file(str(bundle.manifest_path), bucket, manifest_key, Callback=progress)
    return f"{bucket}/{manifest_key}"
