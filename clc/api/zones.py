"""Regions, availability zones and VM types: what the cloud offers and where."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from clc.api.query import apply_filters, paged
from clc.api.registry import Context, action, eucalyptus_action
from clc.models.vmtypes import VmTypeRow
from clc.vm_types import by_size
from clc.zones_client import ZoneError
from services.errors import EC2Error


def _zone_capacity(ctx: Context, zone: str, vm_types: list[VmTypeRow]) -> dict[str, tuple[int, int]]:
    """Per VM type (free, max) in `zone`, as its cluster controller counts them now; none when
    there is no CC to ask or it does not answer (the listing still shows every type)."""
    if ctx.zones is None:
        return {}
    try:
        answer = ctx.zones.resources(zone, [vm.spec() for vm in vm_types])
    except ZoneError:
        return {}
    return {t.vm.name: (t.free, t.max) for t in answer.types}


@action("DescribeRegions")
def describe_regions(ctx: Context, RegionNames: list[str] | None = None,
                     Filters: list[dict[str, Any]] | None = None, AllRegions: bool = False) -> dict:
    region = {"RegionName": ctx.config.REGION,
              "Endpoint": ctx.config.service_url("clc").split("://", 1)[-1],
              "OptInStatus": "opt-in-not-required"}
    for name in RegionNames or []:
        if name != ctx.config.REGION:
            raise EC2Error("InvalidParameterValue", f"Invalid region: {name}")
    regions = apply_filters([region], Filters, {
        "region-name": lambda r: r["RegionName"], "endpoint": lambda r: r["Endpoint"],
        "opt-in-status": lambda r: r["OptInStatus"]})
    return {"Regions": regions}


def _zone(ctx: Context, name: str, index: int) -> dict[str, Any]:
    return {"ZoneName": name, "ZoneId": f"{ctx.config.REGION}-az{index}", "State": "available",
            "RegionName": ctx.config.REGION, "ZoneType": "availability-zone",
            "GroupName": ctx.config.REGION, "NetworkBorderGroup": ctx.config.REGION,
            "OptInStatus": "opt-in-not-required", "Messages": []}


def _verbose_lines(ctx: Context, zone: str) -> list[dict[str, Any]]:
    """Eucalyptus's `verbose` answer: after each zone, one pseudo-zone per VM type whose
    name reads `|- m1.small` and whose state reads `0012 / 0016   1   256     5`
    (free / max, cpu, memory, disk), as euca-describe-availability-zones prints it."""
    vm_types = by_size(ctx.db)
    capacity = _zone_capacity(ctx, zone, vm_types)
    lines = [{"ZoneName": "|- vm types", "State": "free / max   cpu   ram  disk",
              "RegionName": ctx.config.REGION, "Messages": []}]
    for vm in vm_types:
        free, most = capacity.get(vm.name, (0, 0))
        lines.append({"ZoneName": f"|- {vm.name}", "RegionName": ctx.config.REGION, "Messages": [],
                      "State": f"{free:04d} / {most:04d}  {vm.cpu:4d}  {vm.memory_mb:4d}  {vm.disk_gb:4d}"})
    return lines


@action("DescribeAvailabilityZones")
def describe_availability_zones(ctx: Context, ZoneNames: list[str] | None = None,
                                ZoneIds: list[str] | None = None,
                                Filters: list[dict[str, Any]] | None = None,
                                AllAvailabilityZones: bool = False) -> dict:
    names = list(ZoneNames or [])
    verbose = "verbose" in names
    names = [n for n in names if n != "verbose"]
    zones = [_zone(ctx, name, i) for i, name in enumerate(ctx.config.zones, start=1)]
    for name in names:
        if name not in ctx.config.zones:
            raise EC2Error("InvalidParameterValue", f"The zone '{name}' does not exist")
    if names:
        zones = [z for z in zones if z["ZoneName"] in names]
    if ZoneIds:
        zones = [z for z in zones if z["ZoneId"] in ZoneIds]
    zones = apply_filters(zones, Filters, {
        "zone-name": lambda z: z["ZoneName"], "zone-id": lambda z: z["ZoneId"],
        "state": lambda z: z["State"], "region-name": lambda z: z["RegionName"],
        "zone-type": lambda z: z["ZoneType"], "group-name": lambda z: z["GroupName"],
        "opt-in-status": lambda z: z["OptInStatus"]})
    if verbose:
        zones = [line for z in zones for line in [z, *_verbose_lines(ctx, z["ZoneName"])]]
    return {"AvailabilityZones": zones}


def _instance_type(vm: VmTypeRow) -> dict[str, Any]:
    return {
        "InstanceType": vm.name, "CurrentGeneration": True, "FreeTierEligible": False,
        "SupportedUsageClasses": ["on-demand"], "SupportedRootDeviceTypes": ["instance-store", "ebs"],
        "SupportedVirtualizationTypes": ["paravirtual", "hvm"], "BareMetal": False,
        "Hypervisor": "xen", "ProcessorInfo": {"SupportedArchitectures": ["x86_64", "i386"]},
        "VCpuInfo": {"DefaultVCpus": vm.cpu, "DefaultCores": vm.cpu, "DefaultThreadsPerCore": 1},
        "MemoryInfo": {"SizeInMiB": vm.memory_mb}, "InstanceStorageSupported": True,
        "InstanceStorageInfo": {"TotalSizeInGB": vm.disk_gb,
                                "Disks": [{"SizeInGB": vm.disk_gb, "Count": 1, "Type": "hdd"}]},
        "HibernationSupported": False, "BurstablePerformanceSupported": False,
        "DedicatedHostsSupported": False, "AutoRecoverySupported": False,
    }


@action("DescribeInstanceTypes")
def describe_instance_types(ctx: Context, InstanceTypes: list[str] | None = None,
                            Filters: list[dict[str, Any]] | None = None,
                            MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    rows = list(ctx.db.scalars(select(VmTypeRow).order_by(VmTypeRow.name)))
    if InstanceTypes:
        known = {r.name for r in rows}
        unknown = [t for t in InstanceTypes if t not in known]
        if unknown:
            raise EC2Error("InvalidInstanceType",
                           f"The following supplied instance types do not exist: [{', '.join(unknown)}]")
        rows = [r for r in rows if r.name in InstanceTypes]
    rows = apply_filters(rows, Filters, {
        "instance-type": lambda r: r.name, "vcpu-info.default-vcpus": lambda r: r.cpu,
        "memory-info.size-in-mib": lambda r: r.memory_mb,
        "instance-storage-info.total-size-in-gb": lambda r: r.disk_gb,
        "current-generation": lambda r: True})
    return paged("InstanceTypes", rows, MaxResults, NextToken,
                 lambda page: [_instance_type(r) for r in page], maximum=100)


def _eucalyptus_availability(ctx: Context, vm_types: list[VmTypeRow]) -> dict[str, list[dict[str, Any]]]:
    """Per VM type, each zone's room for it (VmTypeZoneStatus): how many more fit, and how
    many fit when the zone is empty."""
    availability: dict[str, list[dict[str, Any]]] = {vm.name: [] for vm in vm_types}
    for zone in ctx.config.zones:
        capacity = _zone_capacity(ctx, zone, vm_types)
        for vm in vm_types:
            free, most = capacity.get(vm.name, (0, 0))
            availability[vm.name].append({"name": vm.name, "zoneName": zone, "max": most,
                                          "available": free})
    return availability


@eucalyptus_action("DescribeInstanceTypes")
def describe_instance_types_eucalyptus(ctx: Context, InstanceTypes: list[str] | None = None,
                                       Verbose: bool = False, Availability: bool = False) -> dict:
    """Eucalyptus's DescribeInstanceTypes (its VmTypeDetails: name, cpu, memory in MiB, disk
    in GiB), smallest first as euca-describe-instance-types listed them; with Verbose or
    Availability, each type's room in every zone."""
    rows = by_size(ctx.db)
    if InstanceTypes:
        known = {r.name for r in rows}
        unknown = [t for t in InstanceTypes if t not in known]
        if unknown:
            raise EC2Error("InvalidInstanceType",
                           f"The following supplied instance types do not exist: [{', '.join(unknown)}]")
        rows = [r for r in rows if r.name in InstanceTypes]
    availability = _eucalyptus_availability(ctx, rows) if Verbose or Availability else None
    details = []
    for vm in rows:
        item: dict[str, Any] = {"name": vm.name, "cpu": vm.cpu, "disk": vm.disk_gb,
                                "memory": vm.memory_mb}
        if availability is not None:
            item["availability"] = availability[vm.name]
        details.append(item)
    return {"instanceTypeDetails": details}
