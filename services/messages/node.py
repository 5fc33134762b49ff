"""The node controller's internal API: what the CC sends an NC and what an NC reports.

Routes (all under the node's base URL, which may carry a prefix such as `/node-3` when one
simulated NC process serves several nodes):
  GET  /internal/health                        -> {"status": "ok"}
  GET  /internal/resources                     -> NodeResources
  GET  /internal/instances                     -> InstanceList
  POST /internal/instances          RunInstance -> InstanceReport   (answers at once: pending;
                                               the same request again answers the same instance)
  GET  /internal/instances/{id}                -> InstanceReport
  POST /internal/instances/{id}/terminate      -> InstanceReport
  POST /internal/instances/{id}/reboot         -> InstanceReport
  GET  /internal/instances/{id}/console        -> ConsoleOutput
  POST /internal/power/sleep | /internal/power/wake -> NodeResources
                                               (simulated nodes only; sleep refuses a node
                                               with live instances: 409)
Every NC process also answers, at its root (a single-node process is its own root):
  GET  /internal/nodes                         -> NodeDirectory
  POST /internal/describe        DescribeNodes -> NodeProcessReport   (every node the process
                                               serves, in one answer; with `subscribe`, the
                                               process pushes NodeEvents to that URL from now on;
                                               with `since`, the cursor of an earlier answer, only
                                               what changed since: a delta)
What an NC pushes (to the CC that subscribed, at CC_NODE_EVENTS_ROUTE of cluster.py):
  POST {subscription.url}/internal/events/nodes  NodeEvents -> {}  the moment an instance changes
                                               state, batched when many change at once
Errors: 404 unknown instance, 409 a request the instance's or node's state does not allow
(e.g. run on a sleeping node), 422 a malformed body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.messages.attach import DiskAttachment, DiskSource

# Route paths, relative to a node's base URL (which may carry a prefix such as /node-3).
NC_RESOURCES_ROUTE = "/internal/resources"
NC_INSTANCES_ROUTE = "/internal/instances"
NC_INSTANCE_ROUTE = "/internal/instances/{instance_id}"
NC_TERMINATE_ROUTE = "/internal/instances/{instance_id}/terminate"
NC_REBOOT_ROUTE = "/internal/instances/{instance_id}/reboot"
NC_CONSOLE_ROUTE = "/internal/instances/{instance_id}/console"
NC_SLEEP_ROUTE = "/internal/power/sleep"
NC_WAKE_ROUTE = "/internal/power/wake"
# Relative to the NC process's root URL.
NC_DIRECTORY_ROUTE = "/internal/nodes"
NC_DESCRIBE_ROUTE = "/internal/describe"

InstanceState = Literal["pending", "running", "shutting-down", "terminated", "stopping", "stopped"]
PowerState = Literal["awake", "asleep"]
# Every instance gets a swap file of this size (Eucalyptus's sda3): the NC creates it and both
# the NC and the CC book it, so the one figure lives here.
SWAP_MB = 512


def instance_mac(instance_id: str) -> str:
    """The MAC Eucalyptus gives an instance's NIC: `d0:0d:` + the 8 hex digits of its id."""
    digits = instance_id.split("-", 1)[-1][:8].lower().rjust(8, "0")
    return "d0:0d:" + ":".join(digits[i:i + 2] for i in range(0, 8, 2))


class Resources(BaseModel):
    cores: int
    memory_mb: int
    disk_gb: int

    def fits(self, need: Resources) -> bool:
        return (need.cores <= self.cores and need.memory_mb <= self.memory_mb
                and need.disk_gb <= self.disk_gb)

    def minus(self, other: Resources) -> Resources:
        return Resources(cores=self.cores - other.cores, memory_mb=self.memory_mb - other.memory_mb,
                         disk_gb=self.disk_gb - other.disk_gb)

    def plus(self, other: Resources) -> Resources:
        return Resources(cores=self.cores + other.cores, memory_mb=self.memory_mb + other.memory_mb,
                         disk_gb=self.disk_gb + other.disk_gb)


class VmType(BaseModel):
    name: str
    cpu: int = Field(ge=1)
    memory_mb: int = Field(ge=1)
    disk_gb: int = Field(ge=1)

    def needs(self) -> Resources:
        """What one instance of this type books on a node; disk counts the swap file too."""
        swap_gb = -(-SWAP_MB // 1024)
        return Resources(cores=self.cpu, memory_mb=self.memory_mb, disk_gb=self.disk_gb + swap_gb)


class NodeResources(BaseModel):
    node_id: str
    max: Resources          # MAX_CORES/MAX_MEM/MAX_DISK or the host's figures
    free: Resources         # max minus what non-terminated instances booked
    host: Resources         # the host's real figures, for comparison (overcommit is visible)
    power: PowerState = "awake"
    hypervisor: str = ""    # libvirt URI


class ImageRef(BaseModel):
    image_id: str           # emi-/eki-/eri-…
    url: str | None = None  # where the NC streams the (decrypted) image from; None: simulated image
    checksum: str | None = None
    size_bytes: int | None = None


class InstanceNetwork(BaseModel):
    mac: str
    bridge: str
    private_ip: str | None = None
    public_ip: str | None = None
    vlan: int | None = None
    # The CC's underlay address, where this network's VXLAN ends (MANAGED with the linux
    # driver); the NC builds its end before the guest starts. None: nothing to build.
    tunnel_remote: str | None = None


class StateReason(BaseModel):
    code: str               # as EC2's StateReason codes: "Server.InternalError", "Client.UserInitiatedShutdown", …
    message: str            # words a user can act on


class LaunchSpec(BaseModel):
    """What every instance of one reservation shares: the CLC sends it to the CC once
    (RunInstances), and the CC to each chosen NC with the instance's own part (RunInstance)."""
    reservation_id: str
    account_id: str
    vm: VmType
    image: ImageRef
    kernel: ImageRef | None = None
    ramdisk: ImageRef | None = None
    key_openssh: str | None = None
    user_data_b64: str = ""


class BootVolume(BaseModel):
    """An EBS volume in the instance's domain from its first start (RunInstances'
    BlockDeviceMappings, the root of an EBS-backed image, and the volumes a stopped instance
    keeps). The CLC has the SC export it before the CC places the instance, so the node finds
    it wherever the scheduler puts the instance."""
    volume_id: str
    device: str             # as the user named it: /dev/sda1 (the root), /dev/sdb, …
    source: DiskSource
    root: bool = False      # the domain boots from it: no instance-store root disk is made


class RunInstance(LaunchSpec):
    instance_id: str
    launch_index: int = 0
    network: InstanceNetwork
    volumes: list[BootVolume] = []


class InstanceReport(BaseModel):
    instance_id: str
    reservation_id: str
    account_id: str
    node_id: str
    state: InstanceState
    reason: StateReason | None = None
    vm: VmType
    image_id: str
    launched_at: datetime
    network: InstanceNetwork
    volumes: list[DiskAttachment] = []     # the EBS volumes attached now (issue 9)


class InstanceList(BaseModel):
    node_id: str
    instances: list[InstanceReport]


class ConsoleOutput(BaseModel):
    instance_id: str
    output: str             # text, last 64 KiB; the CLC base64-encodes it for EC2 clients
    timestamp: datetime


class NodeEntry(BaseModel):
    node_id: str
    prefix: str             # URL prefix under the process's base URL, e.g. "/node-3"


class NodeDirectory(BaseModel):
    """The nodes one simulated NC process serves."""
    nodes: list[NodeEntry]


class Subscription(BaseModel):
    """Where a downstream service pushes its changes: the upstream's base URL, and a key the
    upstream chose that comes back in every push (the CC uses the NC process's URL as it knows
    it, the CLC the zone's name), so the upstream never has to trust a name the sender picked."""
    url: str
    key: str


class DescribeNodes(BaseModel):
    subscribe: Subscription | None = None
    # The cursor of the last answer the caller applied: the answer then carries only what
    # changed since (a delta). A cursor the process does not know (it restarted, or the
    # cursor is too old) gets a whole answer, as does None.
    since: str | None = None
    # In a delta, nodes (prefixes) to answer whole all the same: nodes the caller missed or
    # could not apply, whose changes the cursor has gone past.
    whole: list[str] = []


class NodeStatus(BaseModel):
    prefix: str             # "" for a single-node process, "/node-3" in a simulated one
    resources: NodeResources
    instances: list[InstanceReport]
    # False in a delta: `instances` are only those that changed since the cursor, and `gone`
    # the ids the node has forgotten since (terminated instances past their time).
    complete: bool = True
    gone: list[str] = []


class NodeProcessReport(BaseModel):
    """The nodes one NC process serves, as of one moment: the CC's poll of a whole process.
    Whole (`delta` False): every node that answers, each complete; a node left out does not
    answer. A delta: only nodes that changed since `DescribeNodes.since` (and those asked
    `whole`); a node left out is unchanged, unless it is named in `absent`."""
    nodes: list[NodeStatus]
    cursor: str | None = None       # to send back as DescribeNodes.since; None: no deltas here
    delta: bool = False
    absent: list[str] = []          # prefixes that do not answer now (a down node)


class NodeEvent(BaseModel):
    prefix: str
    resources: NodeResources        # after the change
    instances: list[InstanceReport]  # only those that changed, each as it is now


class NodeEvents(BaseModel):
    key: str                # Subscription.key, echoed
    events: list[NodeEvent]
