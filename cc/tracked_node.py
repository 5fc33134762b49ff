"""One node as the CC tracks it at run time, and how its instances read to the zone: what a
report changes, whether it books room, and what the zone says of an instance whose node is
down or lost."""

from __future__ import annotations

from cc.store import StoredNode
from services.clock import utcnow
from services.messages.cluster import ClusterInstance, NodeState
from services.messages.node import InstanceReport, NodeResources, StateReason


class TrackedNode(StoredNode):
    """One node at run time: its stored fields, and when a call last told us something newer
    than a poll in flight may know (monotonic seconds); such a poll's answer must not undo it."""
    changed_at: float = 0.0
    # What the live instances in `instances` book (cores, MB, GB), kept with the list.
    booked: tuple[int, int, int] = (0, 0, 0)

    @property
    def name(self) -> str:
        return self.node_id or self.url

    def live_instances(self) -> list[InstanceReport]:
        return [r for r in self.instances.values() if is_live(r)]


def is_live(report: InstanceReport) -> bool:
    return report.state != "terminated"


def same_report(old: InstanceReport | None, new: InstanceReport) -> bool:
    """Whether a report says nothing new. What an instance was launched with (type, image,
    owner, time) never changes; its state, reason, node, addresses and volumes do."""
    if old is None:
        return False
    if old is new:
        return True
    return (old.state == new.state and old.reason == new.reason and old.node_id == new.node_id
            and old.network == new.network and old.volumes == new.volumes)


def answering_state(resources: NodeResources) -> NodeState:
    """The state of a node that just answered: its own power state says awake or asleep."""
    return "asleep" if resources.power == "asleep" else "up"


def cluster_instance(node: TrackedNode, report: InstanceReport,
                     lost_after: float | None = None) -> ClusterInstance:
    """An instance as the zone describes it: with its node's state, and when that node is down
    the reason its report is only the last one; down for `lost_after` seconds or more, the node
    is lost and so is the instance (terminated, the reason naming the node)."""
    item = ClusterInstance(**dict(report), node_state=node.state)  # type: ignore[arg-type]
    if node.state == "down" and is_live(report):
        seen = node.last_seen.strftime("%Y-%m-%d %H:%M:%S UTC") if node.last_seen else "never"
        if lost_after is not None and node.last_seen is not None \
                and (utcnow() - node.last_seen).total_seconds() >= lost_after:
            item.state = "terminated"
            item.reason = StateReason(
                code="Server.InternalError",
                message=(f"node {node.name} was lost: down since {seen} ({node.last_error}), "
                         f"longer than NODE_LOST_GRACE ({lost_after:g} s)"))
            return item
        item.reason = StateReason(
            code="Server.InternalError",
            message=(f"node {node.name} is down: it has not answered "
                     f"{node.missed_polls} polls (last seen {seen}; {node.last_error}); "
                     "this is its last report"))
    return item
