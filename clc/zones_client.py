"""The CLC's side of each zone: `ZoneClient` is what handlers, the placement workers and the
reconciliation loop may ask a zone's cluster controller, and `CcZoneClient` asks it over the
signed internal API.

Errors are translated here, once: the CC's ClusterError JSON becomes a `ZoneError` carrying
its EC2 code (InsufficientInstanceCapacity, InvalidInstanceID.NotFound, ...), and a CC that
cannot be reached (connection refused, timeout) or fails (5xx) a `ZoneUnavailable`. Both are
EC2Errors, so a handler that cannot do better lets them reach the user as they are; callers
catch them by name, never with a broad except.

eucasim runs one CC, reached at `config.service_url("cc")`; every zone of ZONES maps to it
until several CCs can be configured."""

from __future__ import annotations

import threading
from typing import Protocol, TypeVar

import httpx
from pydantic import BaseModel

from services.config import CloudConfig
from services.errors import EC2Error
from services.internal import InternalCallError, InternalClient
from services.messages.cluster import (CC_CONSOLE_ROUTE, CC_DESCRIBE_ROUTE, CC_INSTANCES_ROUTE,
                                       CC_NODES_ROUTE, CC_REBOOT_ROUTE, CC_RESOURCES_ROUTE,
                                       CC_TERMINATE_ROUTE, ClusterInstanceList, DescribeResources,
                                       DescribeZone, NodeCapacity, NodeList, RunInstances,
                                       RunInstancesResult, ZoneCapacity, ZoneReport, ZoneResources)
from services.messages.freeze import (FREEZE_ROUTE, THAW_ROUTE, FreezeFilesystems, FreezeResult,
                                      ThawFilesystems)
from services.messages.network import CC_NETWORK_ROUTE, NetworkIntent, NetworkPlanView
from services.messages.attach import (ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk,
                                      DiskAttachment)
from services.messages.node import ConsoleOutput, InstanceReport, Subscription, VmType

# The CC answers at once (the NCs launch in the background); a call that takes longer than
# this is a CC in trouble.
CALL_TIMEOUT = 30.0

Answer = TypeVar("Answer", bound=BaseModel)


class ZoneError(EC2Error):
    """The zone's CC refused: `code` is its EC2 error code, `cc_status` the CC's HTTP status."""

    def __init__(self, code: str, message: str, cc_status: int) -> None:
        super().__init__(code, message, 503 if cc_status >= 500 else 400)
        self.cc_status = cc_status


class ZoneUnavailable(ZoneError):
    """The zone's CC did not answer, or failed (5xx)."""

    def __init__(self, message: str, cc_status: int = 503) -> None:
        super().__init__("Unavailable", message, cc_status)


class ZoneClient(Protocol):
    """What the CLC may ask the cluster controller of a zone. Every method raises ZoneError
    (or ZoneUnavailable) and nothing else for what the zone refuses or cannot answer."""

    def run_instances(self, zone: str, request: RunInstances) -> RunInstancesResult: ...

    def describe(self, zone: str, subscribe: Subscription | None = None) -> ZoneReport:
        """Every instance of the zone and its capacity; with `subscribe`, the CC pushes
        ZoneEvents to that subscription from now on."""
        ...

    def terminate(self, zone: str, instance_id: str) -> InstanceReport | None:
        """None when the zone no longer knows the instance (it is gone already)."""
        ...

    def reboot(self, zone: str, instance_id: str) -> InstanceReport | None:
        """None when the zone does not know the instance or it cannot reboot now."""
        ...

    def console(self, zone: str, instance_id: str) -> ConsoleOutput | None: ...

    def resources(self, zone: str, vm_types: list[VmType]) -> ZoneResources: ...

    def update_network(self, zone: str, intent: NetworkIntent) -> NetworkPlanView:
        """The zone's whole network intent; the CC plans it and applies what changed."""
        ...

    def attach_disk(self, zone: str, instance_id: str, request: AttachDisk) -> DiskAttachment:
        """Attach an exported EBS volume to the instance on its node (services/messages/attach.py)."""
        ...

    def detach_disk(self, zone: str, instance_id: str, volume_id: str,
                    request: DetachDisk) -> DiskAttachment: ...

    def freeze(self, zone: str, instance_id: str, request: FreezeFilesystems) -> FreezeResult:
        """Freeze the instance's file systems for a snapshot (services/messages/freeze.py)."""
        ...

    def thaw(self, zone: str, instance_id: str, request: ThawFilesystems) -> FreezeResult: ...

    def close(self) -> None: ...


def _zone_error(zone: str, error: InternalCallError) -> ZoneError:
    detail = error.detail
    if isinstance(detail, dict) and "code" in detail:
        code, message = str(detail["code"]), str(detail.get("message", ""))
    else:
        code, message = "InternalError", str(detail)
    if error.status >= 500:
        return ZoneUnavailable(f"the cluster controller of zone {zone} failed: {code}: {message}",
                               error.status)
    return ZoneError(code, message, error.status)


class CcZoneClient:
    def __init__(self, config: CloudConfig, transport: httpx.BaseTransport | None = None) -> None:
        self._config = config
        self._transport = transport
        self._clients: dict[str, InternalClient] = {}
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    def _client(self, zone: str) -> InternalClient:
        if zone not in self._config.zones:
            raise EC2Error("InvalidParameterValue", f"The zone '{zone}' does not exist")
        url = self._config.service_url("cc")
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = InternalClient(
                    url, self._config.CLOUD_SECRET, transport=self._transport, timeout=CALL_TIMEOUT)
            return client

    def _call(self, zone: str, method: str, path: str, body: BaseModel | None,
              answer: type[Answer]) -> Answer:
        """The one translation of a CC's failure into what the CLC's callers handle."""
        try:
            result: Answer = self._client(zone).call(method, path, body, answer)
            return result
        except InternalCallError as exc:
            raise _zone_error(zone, exc) from None
        except httpx.HTTPError as exc:
            raise ZoneUnavailable(f"the cluster controller of zone {zone} did not answer: "
                                  f"{type(exc).__name__} {exc}") from None

    def _unless_gone(self, zone: str, path: str, answer: type[Answer], method: str = "POST",
                     gone: tuple[int, ...] = (404,)) -> Answer | None:
        try:
            return self._call(zone, method, path, None, answer)
        except ZoneUnavailable:
            raise
        except ZoneError as exc:
            if exc.cc_status in gone:
                return None
            raise

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # -- the calls -----------------------------------------------------------------------------

    def run_instances(self, zone: str, request: RunInstances) -> RunInstancesResult:
        return self._call(zone, "POST", CC_INSTANCES_ROUTE, request, RunInstancesResult)

    def describe(self, zone: str, subscribe: Subscription | None = None) -> ZoneReport:
        try:
            return self._call(zone, "POST", CC_DESCRIBE_ROUTE, DescribeZone(subscribe=subscribe),
                              ZoneReport)
        except ZoneUnavailable:
            raise
        except ZoneError as exc:
            if exc.cc_status != 404:
                raise
        return self._report_from_polls(zone)

    def _report_from_polls(self, zone: str) -> ZoneReport:
        """A CC without CC_DESCRIBE_ROUTE (before the push work reaches it): the same report
        from its instance list and node list. It never pushes, so polling does all the work;
        version 0 tells the launch holds that this view never counts their instances."""
        instances = self._call(zone, "GET", CC_INSTANCES_ROUTE, None, ClusterInstanceList)
        nodes = self._call(zone, "GET", CC_NODES_ROUTE, None, NodeList)
        return ZoneReport(zone=zone, instances=instances.instances, capacity=ZoneCapacity(
            version=0, nodes=[NodeCapacity(name=n.name, state=n.state, free=n.free, max=n.max)
                              for n in nodes.nodes if n.free is not None and n.max is not None]))

    def terminate(self, zone: str, instance_id: str) -> InstanceReport | None:
        return self._unless_gone(zone, CC_TERMINATE_ROUTE.format(instance_id=instance_id),
                                 InstanceReport)

    def reboot(self, zone: str, instance_id: str) -> InstanceReport | None:
        return self._unless_gone(zone, CC_REBOOT_ROUTE.format(instance_id=instance_id),
                                 InstanceReport, gone=(404, 409))

    def console(self, zone: str, instance_id: str) -> ConsoleOutput | None:
        return self._unless_gone(zone, CC_CONSOLE_ROUTE.format(instance_id=instance_id),
                                 ConsoleOutput, method="GET")

    def resources(self, zone: str, vm_types: list[VmType]) -> ZoneResources:
        return self._call(zone, "POST", CC_RESOURCES_ROUTE, DescribeResources(vm_types=vm_types),
                          ZoneResources)

    def update_network(self, zone: str, intent: NetworkIntent) -> NetworkPlanView:
        return self._call(zone, "PUT", CC_NETWORK_ROUTE, intent, NetworkPlanView)

    def attach_disk(self, zone: str, instance_id: str, request: AttachDisk) -> DiskAttachment:
        return self._call(zone, "POST", ATTACH_ROUTE.format(instance_id=instance_id), request,
                          DiskAttachment)

    def detach_disk(self, zone: str, instance_id: str, volume_id: str,
                    request: DetachDisk) -> DiskAttachment:
        return self._call(zone, "POST", DETACH_ROUTE.format(instance_id=instance_id,
                                                            volume_id=volume_id),
                          request, DiskAttachment)

    def freeze(self, zone: str, instance_id: str, request: FreezeFilesystems) -> FreezeResult:
        return self._call(zone, "POST", FREEZE_ROUTE.format(instance_id=instance_id), request,
                          FreezeResult)

    def thaw(self, zone: str, instance_id: str, request: ThawFilesystems) -> FreezeResult:
        return self._call(zone, "POST", THAW_ROUTE.format(instance_id=instance_id), request,
                          FreezeResult)
