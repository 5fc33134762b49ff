"""`eucasim image …`: bundle an image file, upload it to Walrus and register it, in one go;
and the certificate files `eucasim credentials` shows (the user's certificate and key, and the
cloud's certificate), which euca2ools-style tools need to bundle images themselves."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from services import credentials, pki
from services.bundles import build_bundle
from services.bundles.upload import s3_client, upload_bundle
from services.cli_calls import HomeOption, config_for
from services.messages.identity import AccessKeyInfo

image_app = typer.Typer(help="Images: bundle, upload to Walrus and register.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
KINDS = ("machine", "kernel", "ramdisk")


@image_app.callback()
def images() -> None:
    """Images: bundle, upload to Walrus and register."""


@dataclass(frozen=True)
class CertificateFiles:
    user_cert: Path     # EC2_CERT
    user_key: Path      # EC2_PRIVATE_KEY
    cloud_cert: Path    # EUCALYPTUS_CERT


def certificate_files(home: Path, key: AccessKeyInfo) -> CertificateFiles:
    """The user's certificate and key (issued by the cloud on first request) and the cloud's
    certificate, as paths."""
    cloud = pki.ensure_cloud_ca(home)
    user = pki.ensure_user_certificate(home, key.account_id, key.user_name)
    return CertificateFiles(user.cert_path, user.key_path, cloud.cert_path)


def certificate_exports(files: CertificateFiles, account_id: str) -> str:
    """eucarc lines, as Eucalyptus's credentials zip had them."""
    return (f"export EC2_CERT={files.user_cert}\nexport EC2_PRIVATE_KEY={files.user_key}\n"
            f"export EUCALYPTUS_CERT={files.cloud_cert}\nexport EC2_USER_ID={account_id}\n")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=False)


def _ec2(endpoint: str, key: AccessKeyInfo, region: str) -> Any:
    return boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
                        config=Config(retries={"max_attempts": 2}))


@image_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="The image file (a raw disk, kernel or ramdisk).")],
    bucket: Annotated[str, typer.Option("--bucket", "-b", help="Walrus bucket for the bundle.")],
    kind: Annotated[str, typer.Option(help="machine, kernel or ramdisk.")] = "machine",
    kernel: Annotated[str | None, typer.Option("--kernel", help="eki-… a machine image boots with.")] = None,
    ramdisk: Annotated[str | None, typer.Option("--ramdisk", help="eri-… a machine image boots with.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Image name (default: the file name).")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    arch: Annotated[str, typer.Option("--arch", help="i386, x86_64 or arm64.")] = "x86_64",
    prefix: Annotated[str | None, typer.Option(help="Bundle file prefix (default: the file name).")] = None,
    home: HomeOption = None,
) -> None:
    """Bundle FILE (tar, gzip, AES-128-CBC, 10 MiB parts, signed manifest), upload it to
    Walrus and register it; prints the new emi-/eki-/eri- id."""
    if kind not in KINDS:
        err.print(f"[red]--kind must be one of {', '.join(KINDS)}[/red]")
        raise typer.Exit(2)
    if kind != "machine" and (kernel or ramdisk):
        err.print("[red]only a machine image takes --kernel/--ramdisk[/red]")
        raise typer.Exit(2)
    config = config_for(home)
    try:
        creds = credentials.read(config.EUCASIM_HOME)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    key, ends = creds.key, creds.endpoints
    files = certificate_files(config.EUCASIM_HOME, key)
    with tempfile.TemporaryDirectory(prefix="eucasim-bundle-") as folder, _progress() as bar:
        task = bar.add_task("bundling", total=file.stat().st_size)
        bundle = build_bundle(file, Path(folder), account_id=key.account_id,
                              cloud_cert=pki.load_certificate(files.cloud_cert),
                              user_cert=pki.load_certificate(files.user_cert),
                              user_key=pki.load_private_key(files.user_key), kind=kind,
                              name=name or file.name, prefix=prefix, architecture=arch,
                              kernel_id=kernel, ramdisk_id=ramdisk,
                              progress=lambda n: bar.advance(task, n))
        sizes = sum(p.stat().st_size for p in bundle.part_paths) + bundle.manifest_path.stat().st_size
        task = bar.add_task("uploading", total=sizes)
        try:
            location = upload_bundle(s3_client(ends.s3, key, ends.region), bundle, bucket,
                                     progress=lambda n: bar.advance(task, n))
        except (ClientError, BotoCoreError) as exc:
            err.print(f"[red]upload to {ends.s3} failed: {exc}[/red]")
            raise typer.Exit(1) from None
    params: dict[str, Any] = {"ImageLocation": location, "Name": name or file.name,
                              "Architecture": arch}
    if description:
        params["Description"] = description
    if kernel:
        params["KernelId"] = kernel
    if ramdisk:
        params["RamdiskId"] = ramdisk
    try:
        image_id = _ec2(ends.ec2, key, ends.region).register_image(**params)["ImageId"]
    except (ClientError, BotoCoreError) as exc:
        err.print(f"[red]RegisterImage failed: {exc}[/red]")
        raise typer.Exit(1) from None
    err.print(f"[green]registered[/green] {location} ({len(bundle.part_paths)} parts)")
    print(image_id, flush=True)
