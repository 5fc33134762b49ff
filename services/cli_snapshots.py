"""`eucasim snapshot …`: follow a snapshot's upload to Walrus with a progress bar (`wait`) and
show one snapshot as the CLC reports it, with whether it is application- or only
crash-consistent (`show`). Both ask the EC2 endpoint with the credentials `eucasim up` wrote."""

from __future__ import annotations

import time
from typing import Annotated, Any

import boto3
import typer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from services import credentials
from services.cli_calls import HomeOption, config_for

snapshot_app = typer.Typer(help="EBS snapshots: follow and show them.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
CONSISTENCY_TAG = "eucasim:consistency"


@snapshot_app.callback()
def snapshots() -> None:
    """EBS snapshots: follow and show them."""


def _ec2(home: Any) -> Any:
    config = config_for(home)
    try:
        creds = credentials.read(config.EUCASIM_HOME)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return boto3.client("ec2", endpoint_url=creds.endpoints.ec2, region_name=creds.endpoints.region,
                        aws_access_key_id=creds.key.access_key,
                        aws_secret_access_key=creds.key.secret_key,
                        verify=creds.endpoints.ca_bundle or True,
                        config=Config(retries={"max_attempts": 2}))


def _describe(ec2: Any, snapshot_id: str) -> dict[str, Any]:
    try:
        return dict(ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0])
    except (ClientError, BotoCoreError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _percent(snapshot: dict[str, Any]) -> int:
    return int(str(snapshot.get("Progress", "0%")).rstrip("%") or 0)


@snapshot_app.command("wait")
def wait(snapshot_id: Annotated[str, typer.Argument(help="snap-…")],
         timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 3600,
         every: Annotated[float, typer.Option(help="Seconds between looks.")] = 1.0,
         home: HomeOption = None) -> None:
    """Show SNAPSHOT_ID's upload as a progress bar until it is completed (exit 0) or failed
    (exit 1, with the reason)."""
    ec2 = _ec2(home)
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(snapshot_id, total=100)
        while True:
            snapshot = _describe(ec2, snapshot_id)
            bar.update(task, completed=_percent(snapshot))
            if snapshot["State"] == "completed":
                bar.update(task, completed=100)
                break
            if snapshot["State"] == "error":
                bar.stop()
                err.print(f"[red]{snapshot_id} failed: {snapshot.get('StateMessage', '')}[/red]")
                raise typer.Exit(1)
            if time.monotonic() > deadline:
                bar.stop()
                err.print(f"[red]{snapshot_id} still {snapshot['State']} after {timeout:g} s[/red]")
                raise typer.Exit(1)
            time.sleep(every)
    out.print(f"{snapshot_id} completed")


@snapshot_app.command("show")
def show(snapshot_id: Annotated[str, typer.Argument(help="snap-…")], home: HomeOption = None) -> None:
    """One snapshot: its state, progress, volume, size, consistency and who may restore it."""
    ec2 = _ec2(home)
    snapshot = _describe(ec2, snapshot_id)
    tags = {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}
    try:
        shared = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id,
                                                 Attribute="createVolumePermission")
        who = [p.get("UserId") or p.get("Group", "") for p in shared["CreateVolumePermissions"]]
    except ClientError:  # another account's snapshot: its sharing is the owner's business
        who = []
    table = Table(show_header=False, box=None)
    rows = [("snapshot", snapshot["SnapshotId"]), ("state", snapshot["State"]),
            ("progress", snapshot.get("Progress", "")), ("volume", snapshot["VolumeId"]),
            ("size", f"{snapshot['VolumeSize']} GiB"), ("owner", snapshot["OwnerId"]),
            ("started", str(snapshot["StartTime"])),
            ("description", snapshot.get("Description", "")),
            ("consistency", tags.get(CONSISTENCY_TAG, "crash-consistent")),
            ("restorable by", ", ".join(who) or "its owner only")]
    if snapshot.get("StateMessage"):
        rows.append(("reason", snapshot["StateMessage"]))
    for name, value in rows:
        table.add_row(f"[bold]{name}[/bold]", str(value))
    out.print(table)
