"""How every `eucasim` command calls a service's internal API: signed with the cloud secret,
with failures turned into one readable line and an exit code instead of a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console

from services.config import CloudConfig, ConfigError, load_config
from services.internal import InternalCallError, InternalClient

# Through a pipe rich would lay tables out for 80 columns and cut ids and URLs to fit; a
# program (or a person with `| less`) reading the output wants them whole.
UNBOUNDED = 10_000


def console(stderr: bool = False) -> Console:
    """A rich Console for the `eucasim` commands: the terminal's width on a terminal (or
    COLUMNS), no limit when the output goes to a pipe or a file."""
    made = Console(stderr=stderr)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = UNBOUNDED
    return made


err = console(stderr=True)

HomeOption = Annotated[Path | None, typer.Option("--home", help="State directory (default $EUCASIM_HOME or ./var).")]


def config_for(home: Path | None) -> CloudConfig:
    try:
        return load_config(**({"EUCASIM_HOME": home.absolute()} if home else {}))
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def call_service(config: CloudConfig, service: str, method: str, path: str,
                 body: BaseModel | None, response: type[BaseModel]) -> Any:
    if not config.CLOUD_SECRET:
        err.print("[red]No cloud secret found: has `eucasim up` ever run with this --home?[/red]")
        raise typer.Exit(2)
    client = InternalClient(config.service_url(service), config.CLOUD_SECRET, timeout=15)
    try:
        return client.call(method, path, body, response)
    except InternalCallError as exc:
        detail = exc.detail.get("message", exc.detail) if isinstance(exc.detail, dict) else exc.detail
        err.print(f"[red]{detail}[/red]")
        raise typer.Exit(1) from None
    except (OSError, httpx.HTTPError) as exc:
        err.print(f"[red]cannot reach the {service.upper()} at {client.base_url}: {exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        client.close()
