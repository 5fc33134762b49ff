"""The CLC's seam to Walrus: the EC2 endpoint hands image handlers `ctx.walrus`, and anything
with `read_manifest` and `prepare_image` serves. Here a fake in memory stands in for Walrus
behind a real EC2 endpoint on a real socket, so each Walrus answer (a manifest, a missing one,
no answer at all, a bundle that fails) can be given on purpose."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from fastapi import FastAPI

from clc.accounts import create_access_key, create_account, key_info
from clc.api.images import register_image
from clc.api.registry import Context
from clc.app import bootstrap
from clc.boot_images import resolve_for_launch
from clc.ec2_endpoint import EC2_PATHS, Ec2Endpoint
from clc.image_sync import MANIFEST_MISSING, sync_with_walrus
from clc.walrus_client import ManifestUnreadable, WalrusClient, WalrusUnavailable
from services import pki
from services.bundles import build_bundle
from services.config import CloudConfig, load_config
from services.db import Database
from services.errors import EC2Error
from services.messages.identity import AccessKeyInfo
from services.messages.images import PreparedImage
from services.tracing import TraceRecorder
from tests.support.servers import running


@dataclass
class FakeWalrus:
    """Walrus as a dict: manifests by (bucket, key), and what `prepare_image` answers."""

    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    prepared: dict[tuple[str, str], PreparedImage] = field(default_factory=dict)
    down: bool = False
    reads: list[tuple[str, str]] = field(default_factory=list)

    def read_manifest(self, bucket: str, key: str) -> bytes:
        if self.down:
            raise WalrusUnavailable("Walrus cannot be reached (the fake is down)")
        self.reads.append((bucket, key))
        if (bucket, key) not in self.manifests:
            raise ManifestUnreadable(f"cannot read {bucket}/{key} from Walrus (NoSuchKey)")
        return self.manifests[(bucket, key)]

    def prepare_image(self, bucket: str, manifest_key: str) -> PreparedImage:
        if (bucket, manifest_key) not in self.manifests:
            raise ManifestUnreadable(f"Walrus has no manifest {bucket}/{manifest_key}")
        return self.prepared.get((bucket, manifest_key), PreparedImage(state="available"))


@dataclass
class SeamCloud:
    config: CloudConfig
    db: Database
    walrus: FakeWalrus
    url: str
    user: AccessKeyInfo

    def ec2(self) -> Any:
        return boto3.client("ec2", endpoint_url=self.url, region_name=self.config.REGION,
                            aws_access_key_id=self.user.access_key,
                            aws_secret_access_key=self.user.secret_key,
                            config=Config(retries={"max_attempts": 1}))

    def put_bundle(self, folder: Path, name: str, bucket: str = "bundles") -> str:
        """Bundle a small image as the user and put its manifest into the fake Walrus."""
        home = self.config.EUCASIM_HOME
        cert = pki.ensure_user_certificate(home, self.user.account_id, self.user.user_name)
        raw = folder / f"{name}.img"
        raw.write_bytes(os.urandom(4096))
        built = build_bundle(raw, folder / name, account_id=self.user.account_id,
                             cloud_cert=pki.ensure_cloud_ca(home).certificate(),
                             user_cert=cert.certificate(), user_key=cert.private_key(), name=name)
        key = built.manifest_path.name
        self.walrus.manifests[(bucket, key)] = built.manifest_path.read_bytes()
        return f"{bucket}/{key}"


@pytest.fixture(scope="module")
def seam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeamCloud]:
    home = tmp_path_factory.mktemp("walrus-seam")
    config = load_config(EUCASIM_HOME=home, CLOUD_SECRET="seam-secret")
    db = Database(config.database_url("clc"))
    bootstrap(config, db)
    with db.session() as session:
        create_account(session, "seam-user")
        user = key_info(session, create_access_key(session, "seam-user").access_key)
    assert user is not None
    walrus = FakeWalrus()
    seam_walrus: WalrusClient = walrus  # the type checker holds the fake to the Protocol
    app = FastAPI()
    endpoint = Ec2Endpoint(config, db, TraceRecorder("clc"), walrus=seam_walrus)
    for path in EC2_PATHS:
        app.add_api_route(path, endpoint, methods=["GET", "POST"])
    with running(app) as url:
        yield SeamCloud(config, db, walrus, url, user)
    db.engine.dispose()


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response  # type: ignore[no-any-return]


def test_register_image_reads_the_manifest_through_ctx_walrus(seam: SeamCloud, tmp_path: Path) -> None:
    location = seam.put_bundle(tmp_path, "through-the-seam")
    emi = seam.ec2().register_image(ImageLocation=location, Name="through-the-seam")["ImageId"]
    assert seam.walrus.reads[-1] == tuple(location.split("/", 1))
    image = seam.ec2().describe_images(ImageIds=[emi])["Images"][0]
    assert (image["State"], image["ImageLocation"]) == ("available", location)


def test_a_manifest_walrus_does_not_have_is_invalid_and_registers_nothing(seam: SeamCloud) -> None:
    before = seam.ec2().describe_images(Owners=["self"])["Images"]
    answer = _error(lambda: seam.ec2().register_image(ImageLocation="bundles/gone.manifest.xml",
                                                       Name="never-there"))
    assert answer["Error"]["Code"] == "InvalidManifest"
    assert "bundles/gone.manifest.xml" in answer["Error"]["Message"]
    assert seam.ec2().describe_images(Owners=["self"])["Images"] == before


def test_walrus_not_answering_is_an_internal_error(seam: SeamCloud, tmp_path: Path) -> None:
    location = seam.put_bundle(tmp_path, "walrus-down")
    seam.walrus.down = True
    try:
        answer = _error(lambda: seam.ec2().register_image(ImageLocation=location, Name="walrus-down"))
    finally:
        seam.walrus.down = False
    assert answer["Error"]["Code"] == "InternalError"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert not seam.ec2().describe_images(Filters=[{"Name": "name", "Values": ["walrus-down"]}])["Images"]


def test_a_clc_without_walrus_refuses_register_image(seam: SeamCloud) -> None:
    with seam.db.session() as session:
        ctx = Context(db=session, account_id=seam.user.account_id, user_name="admin",
                      is_admin=False, request_id="req-no-walrus", config=seam.config,
                      recorder=TraceRecorder("clc"), walrus=None)
        with pytest.raises(EC2Error) as refused:
            register_image(ctx, Name="nowhere", ImageLocation="bundles/x.manifest.xml")
    assert (refused.value.code, refused.value.status) == ("Unavailable", 503)


def test_sync_fails_the_image_with_walrus_reason_and_recovers(seam: SeamCloud, tmp_path: Path) -> None:
    location = seam.put_bundle(tmp_path, "fails-then-recovers")
    emi = seam.ec2().register_image(ImageLocation=location, Name="fails-then-recovers")["ImageId"]
    bucket, key = location.split("/", 1)
    seam.walrus.prepared[(bucket, key)] = PreparedImage(
        state="failed", code="Bundle.PartCorrupt", reason="part 0 is corrupt")
    with seam.db.session() as session:
        assert sync_with_walrus(session, seam.walrus, emi).state == "failed"
    image = seam.ec2().describe_images(ImageIds=[emi])["Images"][0]
    assert image["State"] == "failed"
    assert image["StateReason"]["Message"] == "Bundle.PartCorrupt: part 0 is corrupt"
    with seam.db.session() as session, pytest.raises(EC2Error) as refused:
        resolve_for_launch(session, seam.user.account_id, emi, None, None)
    assert refused.value.code == "InvalidAMIID.Unavailable" and "part 0 is corrupt" in refused.value.message

    seam.walrus.prepared[(bucket, key)] = PreparedImage(state="available", sha256="ab" * 32)
    with seam.db.session() as session:
        assert sync_with_walrus(session, seam.walrus, emi).state == "available"
    image = seam.ec2().describe_images(ImageIds=[emi])["Images"][0]
    assert image["State"] == "available" and "StateReason" not in image


def test_sync_fails_an_image_whose_manifest_is_gone(seam: SeamCloud, tmp_path: Path) -> None:
    location = seam.put_bundle(tmp_path, "manifest-deleted")
    emi = seam.ec2().register_image(ImageLocation=location, Name="manifest-deleted")["ImageId"]
    del seam.walrus.manifests[tuple(location.split("/", 1))]  # type: ignore[arg-type]
    with seam.db.session() as session:
        assert sync_with_walrus(session, seam.walrus, emi).code == MANIFEST_MISSING
    image = seam.ec2().describe_images(ImageIds=[emi])["Images"][0]
    assert image["State"] == "failed" and location in image["StateReason"]["Message"]


def test_sync_leaves_a_deregistered_image_deregistered(seam: SeamCloud, tmp_path: Path) -> None:
    location = seam.put_bundle(tmp_path, "deregistered-then-synced")
    emi = seam.ec2().register_image(ImageLocation=location, Name="deregistered-then-synced")["ImageId"]
    seam.ec2().deregister_image(ImageId=emi)
    seam.walrus.prepared[tuple(location.split("/", 1))] = PreparedImage(  # type: ignore[index]
        state="failed", code="Bundle.PartMissing", reason="part 0 is missing")
    with seam.db.session() as session:
        assert sync_with_walrus(session, seam.walrus, emi).state == "failed"
    answer = _error(lambda: seam.ec2().describe_images(ImageIds=[emi]))
    assert answer["Error"]["Code"] == "InvalidAMIID.NotFound"
