"""`eucasim node …` (the zone's nodes, through the CC) and `eucasim nc` (run a node controller
in the foreground, one real node or many simulated ones)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from services.cli_calls import HomeOption, call_service, config_for
from services.launcher import UVICORN_OPTIONS
from services.config import load_config
from services.messages.cluster import CC_NODE_ROUTE, CC_NODES_ROUTE, NodeInfo, NodeList, RegisterNode

node_app = typer.Typer(help="The nodes of this zone, as the cluster controller sees them.",
                       no_args_is_help=True)
out = Console()


def _call(home: Path | None, method: str, path: str, body: RegisterNode | None, response: type) -> Any:
    return call_service(config_for(home), "cc", method, path, body, response)


@node_app.command("register")
def register(url: str, home: HomeOption = None) -> None:
    """Add the node controller at URL to the zone (it is polled from now on)."""
    node = _call(home, "POST", CC_NODES_ROUTE, RegisterNode(url=url), NodeInfo)
    out.print(f"registered {node.url} as {node.name} ({node.state})")  # type: ignore[attr-defined]


@node_app.command("deregister")
def deregister(name: str, home: HomeOption = None) -> None:
    """Remove a node (by its id or URL) from the zone."""
    node = _call(home, "DELETE", CC_NODE_ROUTE.format(name=quote(name, safe="")), None, NodeInfo)
    out.print(f"deregistered {node.name}")  # type: ignore[attr-defined]


@node_app.command("list")
def list_nodes(home: HomeOption = None) -> None:
    """The zone's nodes with their state and resources."""
    listing: NodeList = _call(home, "GET", CC_NODES_ROUTE, None, NodeList)  # type: ignore[assignment]
    table = Table("node", "url", "state", "cores free/max", "memory MB free/max", "instances",
                  title=f"zone {listing.zone} ({listing.policy})")
    for node in listing.nodes:
        cores = f"{node.free.cores}/{node.max.cores}" if node.free and node.max else "-"
        memory = f"{node.free.memory_mb}/{node.max.memory_mb}" if node.free and node.max else "-"
        table.add_row(node.name, node.url, node.state, cores, memory, str(node.instances))
    out.print(table)


def nc(nodes: Annotated[int, typer.Option(help="Simulated nodes in this process (simulated mode only).")] = 1,
       port: Annotated[int | None, typer.Option(help="Port (default NC_PORT).")] = None,
       home: HomeOption = None) -> None:
    """Run a node controller in the foreground: one node, or --nodes N simulated nodes served
    under /node-1 … /node-N."""
    if home:
        os.environ["EUCASIM_HOME"] = str(home.absolute())
    config = load_config()
    factory = "nc.app:create_app"
    if nodes > 1:
        os.environ["NC_SIMULATED_NODES"] = str(nodes)
        factory = "nc.multi:create_app"
    os.execv(sys.executable, [sys.executable, "-m", "uvicorn", "--factory", factory,
                              "--host", config.BIND_ADDRESS, "--port", str(port or config.NC_PORT),
                              *UVICORN_OPTIONS])
