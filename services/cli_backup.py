"""`eucasim backup DIR` and `eucasim restore DIR` (services/backup.py does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services import backup as backups
from services.cli_calls import HomeOption, config_for, console

out = console()
err = console(stderr=True)

FolderArgument = Annotated[Path, typer.Argument(help="The backup folder.")]


def backup(folder: FolderArgument, home: HomeOption = None) -> None:
    """Copy the running cloud (every database, Walrus's objects and snapshots, the SC's
    volumes, the NCs' instances, the PKI and credentials) into a new FOLDER, with the
    services' writes paused while it copies."""
    config = config_for(home)
    try:
        manifest = backups.backup(config, folder)
    except backups.BackupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    out.print(f"Backed up the cloud in {manifest['home']} to {folder.absolute()} "
              f"(writes paused {manifest['writes_paused_s']} s).")


def restore(folder: FolderArgument, home: HomeOption = None) -> None:
    """Lay the backup in FOLDER out under a new EUCASIM_HOME (--home) and the DATABASE_URL
    configured there; `eucasim up` with that home then starts the same cloud."""
    config = config_for(home)
    try:
        result = backups.restore(config, folder)
    except backups.BackupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    out.print(f"Restored {folder.absolute()} into {result['home']}; start it with "
              f"`eucasim up --home {result['home']}`.")
