"""The cluster controller's internal API: what the CLC (and the `eucasim node` command) sends
the CC of a zone, and what the CC answers.

Routes (all under the CC's base URL, all signed with the cloud secret):
  GET    /internal/health                              -> {"status": "ok"}
  GET    /internal/nodes                               -> NodeList
  POST   /internal/nodes              RegisterNode     -> NodeInfo   (409 if the URL is registered)
  DELETE /internal/nodes/{name}                        -> NodeInfo   (name = node id or URL; 404)
  POST   /internal/instances          RunInstances     -> RunInstancesResult
         (409 ClusterError InsufficientInstanceCapacity when fewer than min_count fit: nothing
          started; 404 ClusterError InvalidNode.NotFound for an unknown target_node)
  GET    /internal/instances                           -> ClusterInstanceList
  POST   /internal/instances/{id}/terminate            -> InstanceReport
  POST   /internal/instances/{id}/reboot               -> InstanceReport
  GET    /internal/instances/{id}/console              -> ConsoleOutput
         (404 ClusterError InvalidInstanceID.NotFound; 503 ClusterError NodeUnavailable when the
          instance's node is down)
  POST   /internal/resources          DescribeResources -> ZoneResources
  GET    /internal/settings                            -> ClusterSettings (the values in force)
  PUT    /internal/settings           ClusterSettings  -> ClusterSettings
         (the CLC's properties cluster.scheduling_policy and cluster.polling_period, applied at
          once and kept in the CC's database; 400 ClusterError InvalidParameterValue)

Errors come back as HTTP statuses whose `detail` is a ClusterError (as a JSON object), so
`InternalCallError.detail["code"]` is the EC2 error code the CLC can pass on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.messages.node import (BootVolume, InstanceNetwork, InstanceReport, LaunchSpec, Resources,
                                    StateReason, Subscription, VmType)

CC_NODES_ROUTE = "/internal/nodes"
CC_NODE_ROUTE = "/internal/nodes/{name}"
CC_INSTANCES_ROUTE = "/internal/instances"
CC_TERMINATE_ROUTE = "/internal/instances/{instance_id}/terminate"
CC_REBOOT_ROUTE = "/internal/instances/{instance_id}/reboot"
CC_CONSOLE_ROUTE = "/internal/instances/{instance_id}/console"
CC_RESOURCES_ROUTE = "/internal/resources"
CC_DESCRIBE_ROUTE = "/internal/describe"
CC_NODE_EVENTS_ROUTE = "/internal/events/nodes"
CC_SETTINGS_ROUTE = "/internal/settings"
# On the CLC: where a CC pushes ZoneEvents.
CLC_ZONE_EVENTS_ROUTE = "/internal/events/zone"
# On the CLC: its own capacity view of a zone (ZoneCapacity), what RunInstances is admitted
# against; `eucasim up` waits on it before it says the cloud is up.
CLC_ZONE_CAPACITY_ROUTE = "/internal/zones/{zone}/capacity"

NodeState = Literal["up", "down", "asleep"]
NodeSource = Literal["config", "registered"]
# A name in cc/scheduler.py's POLICIES (GREEDY, ROUNDROBIN, POWERSAVE, and any policy added
# there); the CC refuses to start with a name it does not know.
SchedPolicy = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]


class ClusterError(BaseModel):
    code: str               # EC2 error code: InsufficientInstanceCapacity, InvalidInstanceID.NotFound, …
    message: str


class RegisterNode(BaseModel):
    url: str                # the NC's base URL, prefix included (http://host:8775/node-3)


class NodeInfo(BaseModel):
    name: str               # the node id the NC reports; its URL until it has answered once
    url: str
    source: NodeSource
    position: int           # registration order: GREEDY and ROUNDROBIN walk the nodes in it
    state: NodeState
    missed_polls: int = 0
    last_seen: datetime | None = None
    last_error: str | None = None
    max: Resources | None = None        # as the NC last reported
    free: Resources | None = None       # the NC's free minus what the CC has reserved since
    reserved: Resources = Field(default_factory=lambda: Resources(cores=0, memory_mb=0, disk_gb=0))
    instances: int = 0                  # non-terminated instances on the node
    idle_since: datetime | None = None


class NodeList(BaseModel):
    zone: str
    policy: SchedPolicy
    nodes: list[NodeInfo]


class InstanceLaunch(BaseModel):
    """One instance the CLC would like started; it chose the id and the network already."""
    instance_id: str
    launch_index: int = 0
    network: InstanceNetwork
    volumes: list[BootVolume] = Field(default_factory=list)   # exported already (node.py)


class RunInstances(LaunchSpec):
    # len(instances) is MaxCount; at least min_count of them are placed, or none.
    min_count: int = Field(1, ge=1)
    instances: list[InstanceLaunch] = Field(min_length=1)
    target_node: str | None = None      # admin only: a node id or URL; the policy is bypassed


class Placement(BaseModel):
    instance_id: str
    node: str                           # node id
    # The NC's answer (state pending), or a report whose reason says why the start failed.
    report: InstanceReport | None = None
    reason: StateReason | None = None


class RunInstancesResult(BaseModel):
    reservation_id: str
    policy: SchedPolicy
    placed: list[Placement]
    # Instances beyond what fits (between min_count and MaxCount): never started.
    not_placed: list[str] = Field(default_factory=list)
    # ZoneCapacity.version once this placement is booked: a capacity view at least this new
    # already counts these instances, so the CLC may drop its own hold on them then.
    capacity_version: int = 0


class ClusterInstance(InstanceReport):
    """An NC's report of one instance, with the state of its node as the CC sees it. When the
    node is down the last report is kept and `reason` says so."""
    node_state: NodeState = "up"


class ClusterInstanceList(BaseModel):
    zone: str
    instances: list[ClusterInstance]


class DescribeResources(BaseModel):
    vm_types: list[VmType]              # the CLC owns VM types and sends those it knows


class VmTypeAvailability(BaseModel):
    vm: VmType
    free: int                           # how many more of this type alone fit now
    max: int                            # how many would fit on the nodes if they were empty


class ZoneResources(BaseModel):
    zone: str
    nodes_up: int
    nodes_down: int
    nodes_asleep: int
    types: list[VmTypeAvailability]


class NodeCapacity(BaseModel):
    name: str
    state: NodeState
    free: Resources                     # net of what the CC has reserved
    max: Resources


class ZoneCapacity(BaseModel):
    """The CC's resource view, pushed to the CLC whenever it changes, so the CLC can admit a
    RunInstances without asking (as Eucalyptus 3's CLC kept cluster state).

    Whole (`base` None): `nodes` is every node. A delta (pushed only): `nodes` are the entries
    changed since the view at version `base`, which the CLC must hold to apply it, and
    `removed` the names gone since; a CLC that holds another version answers the push with
    `capacity_stale` (ZoneEventsAnswer) and the CC sends its next view whole."""
    version: int                        # grows with every change the CC makes or learns of
    nodes: list[NodeCapacity]
    base: int | None = None
    removed: list[str] = Field(default_factory=list)


class DescribeZone(BaseModel):
    subscribe: Subscription | None = None


class ZoneReport(BaseModel):
    zone: str
    instances: list[ClusterInstance]
    capacity: ZoneCapacity
    # False while some node the CC serves has not answered a poll since the CC started (a CC
    # that just came up, or whose nodes moved to new addresses): what those nodes run is not
    # in `instances` yet, so an instance left out is not known to be lost.
    nodes_settled: bool = True


class ZoneEvents(BaseModel):
    key: str                            # Subscription.key, echoed (the zone's name)
    zone: str
    instances: list[ClusterInstance] = Field(default_factory=list)  # only those that changed
    capacity: ZoneCapacity | None = None  # when it changed


class ZoneEventsAnswer(BaseModel):
    """The CLC's answer to a ZoneEvents push."""
    changed: int = 0                    # instances whose state moved
    # The push carried a capacity delta whose base is not the view the CLC holds (or the CLC
    # holds a newer one): send the next view whole. Absent from a CLC that takes no deltas.
    capacity_stale: bool | None = None


class ClusterSettings(BaseModel):
    """The CC's settings that may change while it runs (the CLC's `cluster.*` properties). In a
    PUT, a field left None keeps its value; the answer has every field."""
    scheduling_policy: SchedPolicy | None = None
    polling_period: float | None = Field(None, gt=0)
