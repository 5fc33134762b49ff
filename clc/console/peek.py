"""What the console asks the other services, over the same signed internal API the CLC's own
clients and the `eucasim` command use: each service's health, a zone's nodes and network plan
from its CC (through the CLC's zone client), a node's own figures from its NC, and one
request's trace steps from every recorder (services/cli_trace.py, as `eucasim trace` gathers
them). Every answer here is what is true now; a service that does not answer is reported as
such, never an error page."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from clc.zone_service import Directory, ServiceError
from clc.zones_client import CcZoneClient
from services import cli_trace
from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.messages.cluster import CC_NODES_ROUTE, NodeList
from services.messages.network import CC_NETWORK_ROUTE, NetworkPlanView
from services.messages.node import NC_RESOURCES_ROUTE, NodeResources
from services.tracing import TraceStep

HEALTH_TIMEOUT_S = 2.0
# A node's own figures (the host's cores, memory and disk; its hypervisor) hardly change: a page
# polled every two seconds by several people asks each node at most this often.
NODE_FIGURES_TTL_S = 30.0
SERVICES = ("walrus", "sc", "cc", "nc")


@dataclass(frozen=True)
class Health:
    service: str
    url: str
    state: str          # up | down | failing
    detail: str = ""


class ConsoleZoneClient(CcZoneClient):
    """The CLC's zone client with the two reads only the console needs; short timeouts, since
    a page polled every two seconds must not hang on a CC in trouble."""
    CALL_TIMEOUT = 5.0

    def nodes(self, zone: str) -> NodeList:
        return self._call(zone, "GET", CC_NODES_ROUTE, None, NodeList)

    def network_plan(self, zone: str) -> NetworkPlanView:
        return self._call(zone, "GET", CC_NETWORK_ROUTE, None, NetworkPlanView)


class Peek:
    def __init__(self, config: CloudConfig, directory: Directory | None = None) -> None:
        self.config = config
        # Each zone's CC where the CLC calls it (registered on a host of its own, or configured).
        self.zones = ConsoleZoneClient(config, directory=directory)
        self._node_figures: dict[str, tuple[float, NodeResources]] = {}
        self._lock = threading.Lock()

    def health(self, service: str) -> Health:
        url = self.config.service_url(service)
        try:
            response = httpx.get(f"{url}/internal/health", timeout=HEALTH_TIMEOUT_S,
                                 verify=str(self.config.ca_bundle) if url.startswith("https") else True)
        except httpx.HTTPError as exc:
            return Health(service, url, "down", type(exc).__name__)
        if response.status_code != 200:
            return Health(service, url, "failing", f"HTTP {response.status_code}")
        return Health(service, url, "up")

    def nodes(self, zone: str) -> NodeList | str:
        """The zone's nodes, or why they cannot be shown."""
        try:
            return self.zones.nodes(zone)
        except ServiceError as exc:
            return exc.message

    def network_plan(self, zone: str) -> NetworkPlanView | str:
        try:
            return self.zones.network_plan(zone)
        except ServiceError as exc:
            return exc.message

    def node_resources(self, url: str) -> NodeResources | None:
        """A node's own report (the host's real figures beside MAX_*), at most
        NODE_FIGURES_TTL_S old; None if it does not answer. Only its host figures and hypervisor
        are read from it: booked and free come from the CC, which is always current."""
        now = time.monotonic()
        with self._lock:
            kept = self._node_figures.get(url)
        if kept is not None and now - kept[0] < NODE_FIGURES_TTL_S:
            return kept[1]
        client = InternalClient(url, self.config.CLOUD_SECRET, timeout=HEALTH_TIMEOUT_S)
        try:
            resources: NodeResources = client.call("GET", NC_RESOURCES_ROUTE, None, NodeResources)
        except (InternalCallError, httpx.HTTPError):
            return None
        finally:
            client.close()
        with self._lock:
            self._node_figures[url] = (now, resources)
        return resources

    def trace(self, request_id: str) -> tuple[list[TraceStep], list[str]]:
        return cli_trace.gather(self.config, request_id)

    def close(self) -> None:
        self.zones.close()
