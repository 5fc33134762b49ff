"""`eucasim describe-services`: every service of the cloud with its zone, host, state
(ENABLED, NOTREADY, BROKEN, DISABLED) and the reason, as euca-describe-services showed them.

It asks the CLC's admin API; when the CLC itself does not answer, it asks the other services
directly and shows the CLC as BROKEN."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from services.cli_calls import HomeOption, config_for
from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.messages.admin import ADMIN_SERVICES_ROUTE, ServiceList, ServiceStatus
from services.service_states import TIMEOUT, describe_services

COLOURS = {"ENABLED": "green", "NOTREADY": "yellow", "BROKEN": "red", "DISABLED": "dim"}


def gather(config: CloudConfig) -> list[ServiceStatus]:
    client = InternalClient(config.service_url("clc"), config.CLOUD_SECRET, timeout=TIMEOUT * 5)
    try:
        return client.call("GET", ADMIN_SERVICES_ROUTE, None, ServiceList).services
    except (InternalCallError, httpx.HTTPError, OSError):
        # Without the CLC, each service is still asked itself; the CLC's own probe says why.
        return describe_services(config)
    finally:
        client.close()


def services_table(services: list[ServiceStatus]) -> Table:
    table = Table(title="Services")
    for column in ("type", "name", "zone", "host", "state", "reason"):
        table.add_column(column)
    for s in services:
        colour = COLOURS[s.state]
        table.add_row(s.type, s.name, s.zone, s.host, f"[{colour}]{s.state}[/{colour}]", s.reason)
    return table


def describe(home: HomeOption = None,
             as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False) -> None:
    """Every service with its zone, host, state and the reason (exit 1 unless all ENABLED)."""
    config = config_for(home)
    if not config.CLOUD_SECRET:
        Console(stderr=True).print("[red]No cloud secret found: has `eucasim up` ever run with "
                                   "this --home?[/red]")
        raise typer.Exit(2)
    services = gather(config)
    if as_json:
        print(ServiceList(services=services).model_dump_json(indent=2))
    else:
        Console().print(services_table(services))
    if any(s.state != "ENABLED" for s in services):
        raise typer.Exit(1)
