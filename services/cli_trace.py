"""`eucasim trace REQUEST_ID`: one user request as it travelled through the services, gathered
from each service's trace recorder and shown in time order."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
from rich.console import Console
from rich.table import Table

from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.messages.node import NC_DIRECTORY_ROUTE, NodeDirectory
from services.tracing import Trace, TraceStep

SERVICES = ("clc", "walrus", "sc", "cc", "nc")


def _trace_urls(config: CloudConfig) -> list[tuple[str, str]]:
    """(service, base URL) of every recorder to ask; a simulated NC process keeps one recorder
    per node, under the prefixes its `/internal/nodes` lists."""
    urls = [(service, config.service_url(service)) for service in SERVICES]
    client = InternalClient(config.service_url("nc"), config.CLOUD_SECRET, timeout=3)
    try:
        directory = client.call("GET", NC_DIRECTORY_ROUTE, response=NodeDirectory)
        urls += [("nc", config.service_url("nc") + node.prefix) for node in directory.nodes]
    except (InternalCallError, OSError, httpx.HTTPError):
        pass  # a single-node NC (or none): its root recorder is the one
    finally:
        client.close()
    return urls


def gather(config: CloudConfig, request_id: str) -> tuple[list[TraceStep], list[str]]:
    """Every step any reachable service recorded for `request_id`, and the services that could
    not be asked."""
    steps: list[TraceStep] = []
    answered: set[str] = set()
    for service, url in _trace_urls(config):
        client = InternalClient(url, config.CLOUD_SECRET, timeout=3)
        try:
            steps += client.call("GET", f"/internal/trace/{request_id}", response=Trace).steps
            answered.add(service)
        except (InternalCallError, OSError, httpx.HTTPError):
            pass
        finally:
            client.close()
    unreachable = [s for s in SERVICES if s not in answered]
    return sorted(steps, key=lambda s: s.at), unreachable


def show(console: Console, request_id: str, steps: list[TraceStep], unreachable: list[str]) -> None:
    if not steps:
        console.print(f"No service remembers request {request_id}.")
    table = Table("time (UTC)", "service", "step", "what", "ms", "detail", title=f"request {request_id}")
    for step in steps:
        when = datetime.fromtimestamp(step.at, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        detail = ", ".join(f"{k}={v}" for k, v in step.detail.items())
        ms = f"{step.elapsed_ms:.1f}" if step.elapsed_ms is not None else ""
        table.add_row(when, step.service, step.kind, step.what, ms, detail)
    if steps:
        console.print(table)
    if unreachable:
        console.print(f"[dim]not asked (not running here): {', '.join(unreachable)}[/dim]")
