"""`eucasim image upload` end to end (bundle, upload with progress, register), the certificate
files `eucasim credentials` shows, and the tiny image `eucasim up` registers on first start."""

from __future__ import annotations

import os
import re
from pathlib import Path

from typer.testing import CliRunner

from clc.boot_images import resolve_for_launch
from clc.tiny_image import register_tiny_image
from nc.image_cache import ImageCache
from services import pki
from services.cli_images import certificate_exports, certificate_files, image_app
from tests.images.conftest import ImageCloud, unique
from tests.support.clc import SECRET


def _upload(cloud: ImageCloud, path: Path, *args: str) -> str:
    result = CliRunner().invoke(image_app, ["upload", str(path), "--home", str(cloud.home), *args])
    assert result.exit_code == 0, result.output
    found = re.findall(r"\be[mkr]i-[0-9a-f]{8}\b", result.stdout)
    assert found, result.output
    return found[-1]


def test_upload_kernel_ramdisk_and_machine(cloud: ImageCloud, tmp_path: Path) -> None:
    bucket = unique("cli")
    files = {}
    for kind, size in (("kernel", 50_000), ("ramdisk", 70_000), ("machine", 11 * 1024 * 1024)):
        files[kind] = tmp_path / f"{kind}.img"
        files[kind].write_bytes(os.urandom(size))  # incompressible: the machine image spans two parts
    eki = _upload(cloud, files["kernel"], "--bucket", bucket, "--kind", "kernel", "--name", unique("k"))
    eri = _upload(cloud, files["ramdisk"], "--bucket", bucket, "--kind", "ramdisk", "--name", unique("r"))
    name = unique("m")
    emi = _upload(cloud, files["machine"], "--bucket", bucket, "--kernel", eki, "--ramdisk", eri,
                  "--name", name, "--description", "from the CLI")
    assert (eki[:3], eri[:3], emi[:3]) == ("eki", "eri", "emi")
    image = cloud.ec2().describe_images(ImageIds=[emi])["Images"][0]
    assert (image["Name"], image["KernelId"], image["RamdiskId"]) == (name, eki, eri)
    assert image["ImageLocation"] == f"{bucket}/machine.img.manifest.xml"
    keys = {o["Key"] for o in cloud.s3().list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"machine.img.part.00", "machine.img.part.01", "machine.img.manifest.xml"} <= keys
    with cloud.db().session() as session:
        ref, kernel, _ = resolve_for_launch(session, cloud.admin.account_id, emi, None, None).refs(cloud.walrus_url)
    fetched = ImageCache(tmp_path / "node", 100, secret=SECRET).ensure(ref)
    assert fetched.read_bytes() == files["machine"].read_bytes()
    assert kernel is not None and kernel.image_id == eki


def test_upload_refuses_bad_options(cloud: ImageCloud, tmp_path: Path) -> None:
    image = tmp_path / "x.img"
    image.write_bytes(b"\0" * 1000)
    runner = CliRunner()
    bad_kind = runner.invoke(image_app, ["upload", str(image), "--bucket", "b", "--kind", "disk",
                                         "--home", str(cloud.home)])
    assert bad_kind.exit_code == 2
    bad_kernel = runner.invoke(image_app, ["upload", str(image), "--bucket", unique("b"), "--name",
                                           unique("n"), "--kernel", "eki-00000000", "--home", str(cloud.home)])
    assert bad_kernel.exit_code == 1 and "InvalidAMIID.NotFound" in bad_kernel.output


def test_certificate_files(cloud: ImageCloud) -> None:
    files = certificate_files(cloud.home, cloud.admin)
    ca = pki.load_certificate(files.cloud_cert)
    assert pki.issued_by(pki.load_certificate(files.user_cert), ca)
    assert oct(files.user_key.stat().st_mode & 0o777) == "0o600"
    assert b"BEGIN RSA PRIVATE KEY" in files.user_key.read_bytes()
    lines = certificate_exports(files, cloud.admin.account_id)
    assert f"export EC2_CERT={files.user_cert}" in lines and "EUCALYPTUS_CERT=" in lines
    assert certificate_files(cloud.home, cloud.admin) == files  # issued once


def test_tiny_image_for_newcomers(cloud: ImageCloud, tmp_path: Path) -> None:
    db = cloud.db()
    with db.session() as session:
        emi = register_tiny_image(session, cloud.clc.config, cloud.admin)
    with db.session() as session:
        assert register_tiny_image(session, cloud.clc.config, cloud.admin) == emi
    newcomer = cloud.ec2(cloud.new_account("newcomer"))
    image = newcomer.describe_images(ImageIds=[emi])["Images"][0]
    assert image["Public"] is True and image["Name"] == "eucasim-tiny"
    assert image["ImageLocation"].startswith("eucasim-images/")
    with db.session() as session:
        ref, _, _ = resolve_for_launch(session, image["OwnerId"], emi, None, None).refs(cloud.walrus_url)
    assert ImageCache(tmp_path / "node", 100, secret=SECRET).ensure(ref).read_bytes() == bytes(1024 * 1024)


def test_tiny_image_route_for_the_launcher(cloud: ImageCloud) -> None:
    from fastapi import FastAPI

    from clc.tiny_image_route import tiny_image_router
    from services.internal import InternalAuth, InternalClient
    from services.messages.images import TINY_IMAGE_ROUTE, TinyImage
    from tests.support.servers import running

    app = FastAPI()  # clc/app.py will include the same router; here it stands alone on the CLC's db
    app.include_router(tiny_image_router(cloud.db(), cloud.clc.config, InternalAuth(SECRET)))
    with running(app) as url:
        client = InternalClient(url, SECRET)
        first = client.call("POST", TINY_IMAGE_ROUTE, response=TinyImage).image_id
        again = client.call("POST", TINY_IMAGE_ROUTE, response=TinyImage).image_id
        client.close()
    assert first == again and first.startswith("emi-")
    assert cloud.ec2().describe_images(ImageIds=[first])["Images"][0]["Public"] is True
