"""The CLC's side of each zone: a signed client of the zone's cluster controller, turning the
CC's answers and errors into what the EC2 handlers and the reconciliation loop need.

`ZoneServices` is what the EC2 endpoint hands every handler as `ctx.services`:

    services = ZoneServices(config)
    services.zone_capacity("zone-1", vm_types)  # {vm name: (free, max)} for `verbose`
    services.run_instances("zone-1", request)    # RunInstancesResult, or EC2Error
    services.describe_instances("zone-1")        # ClusterInstanceList, or ZoneUnavailable

eucasim runs one CC, reached at `config.service_url("cc")`; every zone of ZONES maps to it
until several CCs can be configured."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from services.config import CloudConfig
from services.errors import EC2Error
from services.internal import InternalCallError, InternalClient
from services.messages.cluster import (ClusterInstanceList, DescribeResources, NodeList,
                                       RunInstances, RunInstancesResult, ZoneResources)
from services.messages.node import ConsoleOutput, InstanceReport, VmType

# A user's call waits at most this long for the CC (it answers at once: the NCs launch in the
# background); the loop's polls are cut shorter so one hung CC cannot stall a round.
CALL_TIMEOUT = 30.0


class ZoneUnavailable(Exception):
    """The zone's CC did not answer (connection refused, timeout, 5xx)."""


def _code_of(error: InternalCallError) -> tuple[str, str]:
    detail = error.detail
    if isinstance(detail, dict) and "code" in detail:
        return str(detail["code"]), str(detail.get("message", ""))
    return "InternalError", str(detail)


class ZoneServices:
    def __init__(self, config: CloudConfig, transport: httpx.BaseTransport | None = None) -> None:
        self._config = config
        self._transport = transport
        self._clients: dict[str, InternalClient] = {}
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    def cc_url(self, zone: str) -> str:
        if zone not in self._config.zones:
            raise EC2Error("InvalidParameterValue", f"The zone '{zone}' does not exist")
        return self._config.service_url("cc")

    def _client(self, zone: str) -> InternalClient:
        url = self.cc_url(zone)
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = InternalClient(
                    url, self._config.CLOUD_SECRET, transport=self._transport, timeout=CALL_TIMEOUT)
            return client

    def _call(self, zone: str, method: str, path: str, body: Any = None,
              response: type[Any] | None = None) -> Any:
        try:
            return self._client(zone).call(method, path, body, response)
        except InternalCallError as exc:
            if exc.status >= 500 and _code_of(exc)[0] in ("InternalError", "NodeUnavailable"):
                raise ZoneUnavailable(f"zone {zone}: {exc.detail}") from None
            raise
        except httpx.HTTPError as exc:
            raise ZoneUnavailable(f"the cluster controller of zone {zone} did not answer: {exc}") from None

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # -- what handlers call --------------------------------------------------------------------

    def run_instances(self, zone: str, request: RunInstances) -> RunInstancesResult:
        """Place and start; EC2Error with the CC's code (InsufficientInstanceCapacity) when it
        refuses, `Unavailable` when it cannot be reached."""
        try:
            return self._call(zone, "POST", "/internal/instances", request, RunInstancesResult)
        except InternalCallError as exc:
            code, message = _code_of(exc)
            raise EC2Error(code, message, 400 if exc.status < 500 else 503) from None
        except ZoneUnavailable as exc:
            raise EC2Error("Unavailable", str(exc), 503) from None

    def describe_instances(self, zone: str) -> ClusterInstanceList:
        return self._call(zone, "GET", "/internal/instances", None, ClusterInstanceList)

    def terminate(self, zone: str, instance_id: str) -> InstanceReport | None:
        """None when the zone no longer knows the instance (already gone)."""
        try:
            return self._call(zone, "POST", f"/internal/instances/{instance_id}/terminate",
                              None, InstanceReport)
        except InternalCallError as exc:
            if exc.status == 404:
                return None
            raise

    def reboot(self, zone: str, instance_id: str) -> InstanceReport | None:
        try:
            return self._call(zone, "POST", f"/internal/instances/{instance_id}/reboot",
                              None, InstanceReport)
        except InternalCallError as exc:
            if exc.status in (404, 409):
                return None
            raise

    def console(self, zone: str, instance_id: str) -> ConsoleOutput | None:
        try:
            return self._call(zone, "GET", f"/internal/instances/{instance_id}/console",
                              None, ConsoleOutput)
        except (InternalCallError, ZoneUnavailable):
            return None

    def nodes(self, zone: str) -> NodeList:
        return self._call(zone, "GET", "/internal/nodes", None, NodeList)

    def resources(self, zone: str, vm_types: list[VmType]) -> ZoneResources:
        return self._call(zone, "POST", "/internal/resources", DescribeResources(vm_types=vm_types),
                          ZoneResources)

    def zone_capacity(self, zone: str, vm_types: list[VmType]) -> dict[str, tuple[int, int]]:
        """{vm type: (free, max)} as the CC counts it now; empty when it cannot be asked."""
        try:
            answer = self.resources(zone, vm_types)
        except (ZoneUnavailable, InternalCallError):
            return {}
        return {t.vm.name: (t.free, t.max) for t in answer.types}
