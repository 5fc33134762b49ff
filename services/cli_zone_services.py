"""`eucasim register-cluster|deregister-cluster|register-sc|deregister-sc`: a zone's cluster
or storage controller on a host of its own, as euca-register-cluster and
euca-register-storage-controller did (through the CLC's admin API; clc/zone_directory.py).
`eucasim describe-services` lists them."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from services.cli_calls import HomeOption, call_service, config_for, console
from services.messages.admin import (ADMIN_ZONE_SERVICE_ROUTE, ADMIN_ZONE_SERVICES_ROUTE,
                                     ZoneServiceSpec, ZoneServiceType, ZoneServiceView)

out = console()
Zone = Annotated[str, typer.Option("--zone", "-z", help="The availability zone (partition) it serves.")]
Host = Annotated[str, typer.Option("--host", "-H", help="Where it listens: host:port.")]


def _register(kind: ZoneServiceType, name: str, zone: str, host: str, home: HomeOption) -> None:
    view: ZoneServiceView = call_service(config_for(home), "clc", "POST", ADMIN_ZONE_SERVICES_ROUTE,
                                         ZoneServiceSpec(type=kind, name=name, zone=zone, host=host),
                                         ZoneServiceView)
    print(f"SERVICE\t{view.type}\t{view.zone}\t{view.name}\t{view.host}:{view.port}", flush=True)


def _deregister(kind: ZoneServiceType, name: str, home: HomeOption) -> None:
    path = ADMIN_ZONE_SERVICE_ROUTE.format(type=kind, name=quote(name, safe=""))
    view: ZoneServiceView = call_service(config_for(home), "clc", "DELETE", path, None, ZoneServiceView)
    out.print(f"deregistered {view.type} {view.name} of zone {view.zone}; the zone uses the "
              f"configured one again", highlight=False)


def register_cluster(name: str, zone: Zone, host: Host, home: HomeOption = None) -> None:
    """Register NAME as the cluster controller of ZONE at HOST:PORT (it must answer there)."""
    _register("cluster", name, zone, host, home)


def deregister_cluster(name: str, home: HomeOption = None) -> None:
    """Forget the cluster controller NAME; its zone goes back to the configured CC."""
    _deregister("cluster", name, home)


def register_sc(name: str, zone: Zone, host: Host, home: HomeOption = None) -> None:
    """Register NAME as the storage controller of ZONE at HOST:PORT (it must answer there)."""
    _register("storage", name, zone, host, home)


def deregister_sc(name: str, home: HomeOption = None) -> None:
    """Forget the storage controller NAME; its zone goes back to the configured SC."""
    _deregister("storage", name, home)


def install(app: typer.Typer) -> None:
    for command in (register_cluster, deregister_cluster, register_sc, deregister_sc):
        app.command(command.__name__.replace("_", "-"))(command)
