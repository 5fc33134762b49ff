"""`eucasim status`: the cloud at a glance, as rich tables — which services answer, the nodes
of each zone with the cores and memory booked on them, and the instances the zone runs.

Every zone's CC is asked: the one registered for the zone on a host of its own (`eucasim
register-cluster`, listed by the CLC's admin API), else the configured one, as the CLC's own
calls find it (clc/zone_directory.py). It asks the services themselves (health routes, and the
CCs' signed internal API), so it shows what is true now, not what a database last recorded."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import typer
from rich.table import Table

from services import launcher
from services.cli_calls import HomeOption, config_for, console
from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.messages.admin import ADMIN_ZONE_SERVICES_ROUTE, ZoneServiceList, ZoneServiceView
from services.messages.cluster import (CC_INSTANCES_ROUTE, CC_NODES_ROUTE, ClusterInstanceList,
                                       NodeList)

SERVICES = ("clc", "walrus", "sc", "cc", "nc")
TIMEOUT = 3.0


def _health(url: str) -> str:
    try:
        response = httpx.get(f"{url}/internal/health", timeout=TIMEOUT)
    except httpx.HTTPError:
        return "[red]down[/red]"
    return "[green]up[/green]" if response.status_code == 200 else f"[yellow]{response.status_code}[/yellow]"


@dataclass
class ZoneCc:
    """One cluster controller and the zones the CLC sends to it."""
    url: str
    name: str | None                      # as registered; None for the configured CC
    zones: list[str] = field(default_factory=list)

    def where(self) -> str:
        return f"{self.name} at {self.url}" if self.name else f"the configured CC at {self.url}"


def registered_services(config: CloudConfig) -> tuple[list[ZoneServiceView], str | None]:
    """The zones' services registered on hosts of their own, from the CLC's admin API, and
    why they could not be read (None when they were)."""
    client = InternalClient(config.service_url("clc"), config.CLOUD_SECRET, timeout=TIMEOUT * 2)
    try:
        return client.call("GET", ADMIN_ZONE_SERVICES_ROUTE, None, ZoneServiceList).services, None
    except (InternalCallError, httpx.HTTPError, OSError) as exc:
        return [], str(exc)
    finally:
        client.close()


def zone_ccs(config: CloudConfig, registered: list[ZoneServiceView]) -> list[ZoneCc]:
    """Each zone's CC: the one registered for it, else the configured one; one entry per CC,
    in the order of the zones (the configuration's first, then any other registered)."""
    named = {v.zone: v for v in registered if v.type == "cluster"}
    zones = list(config.zones) + sorted(set(named) - set(config.zones))
    found: dict[str, ZoneCc] = {}
    for zone in zones:
        view = named.get(zone)
        url = view.url if view is not None else config.service_url("cc")
        found.setdefault(url, ZoneCc(url, view.name if view is not None else None)).zones.append(zone)
    return list(found.values())


def services_table(config: CloudConfig, registered: list[ZoneServiceView] | None = None) -> Table:
    table = Table(title="Services")
    for column in ("service", "url", "state"):
        table.add_column(column)
    for name in SERVICES:
        url = config.service_url(name)
        if not launcher.available(f"{name}.app:create_app"):
            table.add_row(name, url, "[dim]not part of this version[/dim]")
            continue
        table.add_row(name, url, _health(url))
    for view in registered or []:
        short = "cc" if view.type == "cluster" else "sc"
        table.add_row(f"{short} {view.name} ({view.zone})", view.url, _health(view.url))
    return table


def _booked(total: int | None, free: int | None) -> str:
    if total is None or free is None:
        return "?"
    return f"{total - free} / {total}"


def nodes_table(nodes: NodeList, where: str | None = None) -> Table:
    table = Table(title=f"Nodes of {nodes.zone} (scheduling: {nodes.policy}"
                        + (f"; {where})" if where else ")"))
    for column in ("node", "url", "state", "cores booked/max", "memory MB booked/max", "instances"):
        table.add_column(column)
    for node in nodes.nodes:
        table.add_row(node.name, node.url, node.state,
                      _booked(node.max.cores if node.max else None, node.free.cores if node.free else None),
                      _booked(node.max.memory_mb if node.max else None,
                              node.free.memory_mb if node.free else None),
                      str(node.instances))
    return table


def instances_table(instances: ClusterInstanceList) -> Table:
    table = Table(title=f"Instances in {instances.zone}")
    for column in ("instance", "state", "type", "node", "account", "private ip", "public ip", "reason"):
        table.add_column(column)
    for item in sorted(instances.instances, key=lambda i: (i.launched_at, i.instance_id)):
        table.add_row(item.instance_id, item.state, item.vm.name, item.node_id, item.account_id,
                      item.network.private_ip or "", item.network.public_ip or "",
                      item.reason.message if item.reason else "")
    return table


def status(home: HomeOption = None) -> None:
    """Show services, every zone's nodes (booked/max cores and memory) and instances."""
    out, err = console(), console(stderr=True)
    config = config_for(home)
    if not config.CLOUD_SECRET:
        out.print(services_table(config))
        err.print("[yellow]No cloud secret: has `eucasim up` ever run with this --home?[/yellow]")
        raise typer.Exit(1)
    registered, unread = registered_services(config)
    out.print(services_table(config, registered))
    if unread is not None:
        err.print(f"[yellow]cannot ask the CLC at {config.service_url('clc')} which zones have a "
                  f"cluster controller of their own ({unread}): the configured CC only[/yellow]")
    failed = False
    for cc in zone_ccs(config, registered):
        if not _show_zone(cc, config.CLOUD_SECRET):
            failed = True
    if failed:
        raise typer.Exit(1)


def _show_zone(cc: ZoneCc, secret: str) -> bool:
    """The nodes and instances of the zone `cc` serves; False when it did not answer."""
    out, err = console(), console(stderr=True)
    client = InternalClient(cc.url, secret, timeout=TIMEOUT * 2)
    try:
        out.print(nodes_table(client.call("GET", CC_NODES_ROUTE, None, NodeList), cc.where()))
        out.print(instances_table(client.call("GET", CC_INSTANCES_ROUTE, None, ClusterInstanceList)))
    except (InternalCallError, httpx.HTTPError) as exc:
        err.print(f"[red]cannot ask the cluster controller of {', '.join(cc.zones)} at "
                  f"{cc.url}: {exc}[/red]")
        return False
    finally:
        client.close()
    return True
