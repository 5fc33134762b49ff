"""The first image: a public machine image every fresh cloud offers newcomers, so
`run-instances` works before anyone has bundled an image of their own."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc.image_registration import register
from clc.models.images import Image
from clc.walrus_client import S3Manifests
from services import pki
from services.bundles import build_bundle
from services.bundles.upload import s3_client, upload_bundle
from services.config import CloudConfig
from services.messages.identity import AccessKeyInfo

TINY_BUCKET = "eucasim-images"
TINY_NAME = "eucasim-tiny"


def register_tiny_image(db: Session, config: CloudConfig, owner: AccessKeyInfo, *,
                        s3: Any = None, bucket: str = TINY_BUCKET, name: str = TINY_NAME,
                        size_bytes: int = 1024 * 1024) -> str:
    """1 MiB of zeros, bundled with the owner's certificate (the cloud admin's, for the
    newcomers' image), uploaded to `bucket` with the owner's key and registered public.
    Idempotent: a second call returns the image registered by the first.
    Walrus must be up (`s3` is a boto3 S3 client for it; None builds one from `config`)."""
    existing = db.scalar(select(Image.id).where(Image.account_id == owner.account_id,
                                                Image.name == name, Image.state == "available"))
    if existing:
        return existing
    home = config.EUCASIM_HOME
    cloud = pki.ensure_cloud_ca(home)
    user = pki.ensure_user_certificate(home, owner.account_id, owner.user_name)
    client = s3 or s3_client(config.service_url("walrus"), owner, config.REGION)
    with tempfile.TemporaryDirectory(prefix="eucasim-tiny-") as folder:
        raw = Path(folder) / f"{name}.img"
        with open(raw, "wb") as handle:
            handle.truncate(size_bytes)
        bundle = build_bundle(raw, Path(folder) / "bundle", account_id=owner.account_id,
                              cloud_cert=cloud.certificate(), user_cert=user.certificate(),
                              user_key=user.private_key(), name=name)
        location = upload_bundle(client, bundle, bucket)
    image = register(db, owner.account_id, home, S3Manifests(client), location=location,
                     name=name, description="eucasim's tiny machine image (1 MiB of zeros)",
                     public=True)
    return image.id
