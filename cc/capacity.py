"""The numbers behind `euca-describe-availability-zones verbose`: for each VM type, how many
more instances of that type alone would fit now (free) and on empty nodes (max), summed over
the nodes that are up or asleep (a sleeping node can be woken; a down one cannot help)."""

from __future__ import annotations

from collections.abc import Sequence

from cc.scheduler import NodeView
from services.messages.cluster import VmTypeAvailability, ZoneResources
from services.messages.node import Resources, VmType


def how_many(space: Resources, need: Resources) -> int:
    """VM types need at least one core, one MB and one GB, so no division by zero."""
    return max(0, min(space.cores // need.cores, space.memory_mb // need.memory_mb,
                      space.disk_gb // need.disk_gb))


def availability(views: Sequence[NodeView], vm_types: Sequence[VmType]) -> list[VmTypeAvailability]:
    out = []
    for vm in vm_types:
        need = vm.needs()
        out.append(VmTypeAvailability(vm=vm, free=sum(how_many(v.free, need) for v in views),
                                      max=sum(how_many(v.max, need) for v in views)))
    return out


def describe(zone: str, views: Sequence[NodeView], states: Sequence[str],
             vm_types: Sequence[VmType]) -> ZoneResources:
    return ZoneResources(zone=zone, nodes_up=states.count("up"), nodes_down=states.count("down"),
                         nodes_asleep=states.count("asleep"), types=availability(views, vm_types))
