"""Walrus's connection to the S3 cluster that holds its bodies (WALRUS_BACKEND=s3): where the
cluster is and the one boto3 client every thread shares (botocore clients are thread-safe),
its connection pool as large as Walrus's worker pool plus the part senders, so no thread
waits for a socket. The hot requests of single blobs skip the client (walrus/s3_http.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.config import CloudConfig
from walrus.offload import THREADS

# Threads that send parts and streamed PUTs to the cluster (walrus/s3_writer.py).
SENDERS = 16


@dataclass(frozen=True)
class S3Location:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    @classmethod
    def of(cls, config: CloudConfig) -> S3Location:
        if not config.WALRUS_S3_ENDPOINT:
            raise ValueError("WALRUS_BACKEND=s3 needs WALRUS_S3_ENDPOINT (and its keys)")
        return cls(config.WALRUS_S3_ENDPOINT, config.WALRUS_S3_ACCESS_KEY,
                   config.WALRUS_S3_SECRET_KEY, config.WALRUS_S3_BUCKET, config.WALRUS_S3_REGION)


def backend_client(location: S3Location) -> Any:
    config = Config(
        region_name=location.region, signature_version="s3v4",
        # Walrus checks every body itself (MD5 and the x-amz-checksum-* family): signing the
        # payload again would cost a SHA-256 over every byte, so the cluster gets
        # UNSIGNED-PAYLOAD; and plain bodies, not aws-chunked ones with CRC trailers, which
        # not every S3 cluster takes (Ceph 16 does not).
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=THREADS + SENDERS,
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10, read_timeout=120, tcp_keepalive=True,
        # Walrus builds every call's parameters itself; checking them again costs a 1 KiB GET
        # a good share of its time in botocore.
        parameter_validation=False)
    return boto3.session.Session().client(
        "s3", endpoint_url=location.endpoint, aws_access_key_id=location.access_key,
        aws_secret_access_key=location.secret_key, config=config)


def missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")
