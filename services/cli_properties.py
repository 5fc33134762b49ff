"""`eucasim property get [NAME]` / `eucasim property set NAME VALUE`: the cloud properties that
may change while it runs, as euca-describe-properties and euca-modify-property showed them
(through the CLC's admin API; clc/properties.py says what each one does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from pydantic import BaseModel
from rich.table import Table

from services.cli_calls import HomeOption, call_service, config_for, console
from services.messages.admin import (ADMIN_PROPERTIES_ROUTE, ADMIN_PROPERTY_ROUTE, NewValue,
                                     PropertyList, PropertyView)

property_app = typer.Typer(help="Cloud properties (euca-describe-properties / euca-modify-property).",
                           no_args_is_help=True)


def _call(home: Path | None, method: str, path: str, body: BaseModel | None, response: type) -> Any:
    return call_service(config_for(home), "clc", method, path, body, response)


def _table(views: list[PropertyView]) -> Table:
    table = Table("property", "value", "default", "description", title="Properties")
    for view in views:
        value = f"[bold]{view.value}[/bold]" if view.stored else view.value
        table.add_row(view.name, value, view.default, view.description)
    return table


@property_app.command("get")
def get(name: Annotated[str | None, typer.Argument(help="One property (default: all).")] = None,
        home: HomeOption = None) -> None:
    """Every property (or NAME) with its value, its eucalyptus.conf default and what it does."""
    if name is None:
        listing: PropertyList = _call(home, "GET", ADMIN_PROPERTIES_ROUTE, None, PropertyList)
        # Made here, not at import: the width follows this run's terminal (or COLUMNS).
        console().print(_table(listing.properties))
    else:
        view: PropertyView = _call(home, "GET", ADMIN_PROPERTY_ROUTE.format(name=quote(name, safe="")),
                                   None, PropertyView)
        print(f"PROPERTY\t{view.name}\t{view.value}", flush=True)


@property_app.command("set")
def set_(name: str, value: str, home: HomeOption = None) -> None:
    """Set NAME to VALUE, applied at once (no restart) and kept across restarts."""
    view: PropertyView = _call(home, "PUT", ADMIN_PROPERTY_ROUTE.format(name=quote(name, safe="")),
                               NewValue(value=value), PropertyView)
    print(f"PROPERTY\t{view.name}\t{view.value}", flush=True)
