"""The CC's gauges, read when Prometheus scrapes: per node, what is booked (max minus free,
the CC's reservations included) against its max, for cores, memory and disk; a max above the
host's own is overcommit (MAX_CORES), visible here as booked beyond the host."""

from __future__ import annotations

from collections.abc import Callable

from services.messages.cluster import NodeList
from services.metrics import Samples, ServiceMetrics

RESOURCES = (("cores", "cores"), ("memory_mb", "memory_mebibytes"), ("disk_gb", "disk_gibibytes"))


def cc_gauges(metrics: ServiceMetrics, nodes: Callable[[], NodeList]) -> None:
    def samples(field: str) -> Samples:
        listing = nodes()
        found = []
        for node in listing.nodes:
            if node.max is None or node.free is None:
                continue
            most = getattr(node.max, field)
            found.append(((listing.zone, node.name, "max"), most))
            found.append(((listing.zone, node.name, "booked"), most - getattr(node.free, field)))
        return found

    for field, unit in RESOURCES:
        metrics.gauge(f"eucasim_node_{unit}", f"Node {unit.replace('_', ' ')}: booked and max.",
                      ["zone", "node", "kind"], lambda field=field: samples(field))
    metrics.gauge("eucasim_node_up", "1 when the CC has the node up, else 0.",
                  ["zone", "node", "state"],
                  lambda: [((n.zone, node.name, node.state), 1.0 if node.state == "up" else 0.0)
                           for n in [nodes()] for node in n.nodes])
