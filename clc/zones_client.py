"""The CLC's side of each zone: `ZoneClient` is what handlers, the placement workers and the
reconciliation loop may ask a zone's cluster controller, and `CcZoneClient` asks it over the
signed internal API.

Errors are translated here, once: the CC's ClusterError JSON becomes a `ZoneError` carrying
its EC2 code (InsufficientInstanceCapacity, InvalidInstanceID.NotFound, ...), and a CC that
cannot be reached (connection refused, timeout) or fails (5xx) a `ZoneUnavailable`. Both are
EC2Errors, so a handler that cannot do better lets them reach the user as they are; callers
catch them by name, never with a broad except.

A zone's CC is the one registered for it (`eucasim register-cluster`, clc/zone_directory.py),
else the configured one (`config.service_url("cc")`), which serves every zone left."""

from __future__ import annotations

from typing import Protocol

from clc.zone_service import ServiceError, ZoneServiceClient
from services.errors import EC2Error
from services.messages.cluster import (CC_CONSOLE_ROUTE, CC_DESCRIBE_ROUTE, CC_INSTANCES_ROUTE,
                                       CC_NODES_ROUTE, CC_REBOOT_ROUTE, CC_RESOURCES_ROUTE,
                                       CC_SETTINGS_ROUTE, CC_TERMINATE_ROUTE, ClusterInstanceList,
                                       ClusterSettings, DescribeResources,
                                       DescribeZone, NodeCapacity, NodeList, RunInstances,
                                       RunInstancesResult, ZoneCapacity, ZoneReport, ZoneResources)
from services.messages.freeze import (FREEZE_ROUTE, THAW_ROUTE, FreezeFilesystems, FreezeResult,
                                      ThawFilesystems)
from services.messages.network import CC_NETWORK_ROUTE, NetworkIntent, NetworkPlanView
from services.messages.attach import (ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk,
                                      DiskAttachment)
from services.messages.node import ConsoleOutput, InstanceReport, Subscription, VmType

class ZoneError(ServiceError):
    """The zone's CC refused: `code` is its EC2 code, `service_status` the CC's HTTP status."""


class ZoneUnavailable(ZoneError):
    """The zone's CC did not answer, or failed (5xx)."""
    unavailable = True

    def __init__(self, message: str, cc_status: int = 503) -> None:
        super().__init__("Unavailable", message, cc_status)


class ZoneClient(Protocol):
    """What the CLC may ask the cluster controller of a zone. Every method raises ZoneError
    (or ZoneUnavailable) and nothing else for what the zone refuses or cannot answer."""

    def run_instances(self, zone: str, request: RunInstances) -> RunInstancesResult: ...

    def describe(self, zone: str, subscribe: Subscription | None = None) -> ZoneReport:
        return self._call(zone, "POST", CC_DESCRIBE_ROUTE, DescribeZone(subscribe=subscribe),
                          ZoneReport)

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

    def change_settings(self, zone: str, settings: ClusterSettings) -> ClusterSettings:
        """Apply the CLC's cluster.* properties on the zone's CC at once; its values in force."""
        ...

    def close(self) -> None: ...


class CcZoneClient(ZoneServiceClient):
    SERVICE = "cc"
    TITLE = "cluster controller"
    # The CC answers at once (the NCs launch in the background); a call that takes longer
    # than this is a CC in trouble.
    CALL_TIMEOUT = 30.0

    def _refused(self, code: str, message: str, status: int) -> ServiceError:
        return ZoneError(code, message, status)

    def _unavailable(self, message: str, status: int, code: str) -> ServiceError:
        return ZoneUnavailable(message, status)

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
        return self._unless_unknown(zone, "POST", CC_TERMINATE_ROUTE.format(instance_id=instance_id),
                                    None, InstanceReport)

    def reboot(self, zone: str, instance_id: str) -> InstanceReport | None:
        return self._unless_unknown(zone, "POST", CC_REBOOT_ROUTE.format(instance_id=instance_id),
                                    None, InstanceReport, unknown=(404, 409))

    def console(self, zone: str, instance_id: str) -> ConsoleOutput | None:
        return self._unless_unknown(zone, "GET", CC_CONSOLE_ROUTE.format(instance_id=instance_id),
                                    None, ConsoleOutput)

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

    def change_settings(self, zone: str, settings: ClusterSettings) -> ClusterSettings:
        return self._call(zone, "PUT", CC_SETTINGS_ROUTE, settings, ClusterSettings)
