"""`eucasim status`: the cloud at a glance, as rich tables — which services answer, the nodes
of each zone with the cores and memory booked on them, and the instances the zone runs.

It asks the services themselves (health routes, and the CC's signed internal API), so it
shows what is true now, not what a database last recorded."""

from __future__ import annotations

import httpx
import typer
from rich.table import Table

from services import launcher
from services.cli_calls import HomeOption, config_for, console
from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
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


def services_table(config: CloudConfig) -> Table:
    table = Table(title="Services")
    for column in ("service", "url", "state"):
        table.add_column(column)
    for name in SERVICES:
        url = config.service_url(name)
        if not launcher.available(f"{name}.app:create_app"):
            table.add_row(name, url, "[dim]not part of this version[/dim]")
            continue
        table.add_row(name, url, _health(url))
    return table


def _booked(total: int | None, free: int | None) -> str:
    if total is None or free is None:
        return "?"
    return f"{total - free} / {total}"


def nodes_table(nodes: NodeList) -> Table:
    table = Table(title=f"Nodes of {nodes.zone} (scheduling: {nodes.policy})")
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
    """Show services, nodes (booked/max cores and memory) and instances."""
    out, err = console(), console(stderr=True)
    config = config_for(home)
    out.print(services_table(config))
    if not config.CLOUD_SECRET:
        err.print("[yellow]No cloud secret: has `eucasim up` ever run with this --home?[/yellow]")
        raise typer.Exit(1)
    cc = InternalClient(config.service_url("cc"), config.CLOUD_SECRET, timeout=TIMEOUT * 2)
    try:
        out.print(nodes_table(cc.call("GET", CC_NODES_ROUTE, None, NodeList)))
        out.print(instances_table(cc.call("GET", CC_INSTANCES_ROUTE, None, ClusterInstanceList)))
    except (InternalCallError, httpx.HTTPError) as exc:
        err.print(f"[red]cannot ask the cluster controller at {config.service_url('cc')}: {exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        cc.close()
