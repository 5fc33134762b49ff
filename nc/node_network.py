"""The node's half of MANAGED networking with the `linux` driver: before a guest starts, the
bridge of its network and the VXLAN device that carries it to the CC (VNI = the network's
tag, ending at the CC's underlay address, which comes with the instance), as the CC builds the
other end. Idempotent: the second instance of a network finds both there. In simulated mode
(`plan`) there is nothing to build and the NC never needs root.

One build at a time: the NC prepares the instances of one launch in parallel threads, and two
of them on the same network both looking for its bridge before either made it both try to add
it, and the second fails with EEXIST (its instance then fails to boot).

When a network's last guest on this node is gone, its bridge and VXLAN end go too (a guest's
tap leaves the bridge when its domain is destroyed, so the bridge's ports say who still uses
it); a network being prepared for a guest whose domain has not started yet counts as used."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from pyroute2 import NetlinkError

from services.hostnet import HostNetwork
from services.messages.node import InstanceNetwork

_BUILDING = threading.Lock()  # the host's devices are one per process's namespace: one lock
_STARTING: Counter[str] = Counter()  # bridge -> guests prepared whose domain has not started


@dataclass(frozen=True)
class NodeNetwork:
    underlay_address: str       # this node's address on the wire to the CC (VNET_LOCALIP)
    private_interface: str      # the device that wire is (VNET_PRIVINTERFACE)

    def prepare(self, network: InstanceNetwork) -> str | None:
        """Build what `network` needs on this host; answers what was built, for the console."""
        if network.vlan is None or network.tunnel_remote is None:
            return None  # no tag (MANAGED-NOVLAN, SYSTEM): the site's bridge is already there
        device = f"vx{network.vlan}"
        with _BUILDING, HostNetwork() as host:
            host.vxlan(device, network.vlan, self.underlay_address, self.private_interface,
                       network.bridge, [network.tunnel_remote])
            _STARTING[network.bridge] += 1
        return f"{device} (VNI {network.vlan}) to {network.tunnel_remote} in {network.bridge}"

    def started(self, network: InstanceNetwork) -> None:
        """The guest `prepare` was for has started, or will not: its tap now speaks for it."""
        if network.vlan is None or network.tunnel_remote is None:
            return
        with _BUILDING:
            _STARTING[network.bridge] -= 1
            if _STARTING[network.bridge] <= 0:
                del _STARTING[network.bridge]

    def release(self, network: InstanceNetwork) -> str | None:
        """After a guest's domain is gone: remove its network's bridge and VXLAN end when no
        other guest uses them; answers what was removed, for the console."""
        if network.vlan is None or network.tunnel_remote is None:
            return None
        device = f"vx{network.vlan}"
        with _BUILDING, HostNetwork() as host:
            if _STARTING[network.bridge] > 0 or set(host.ports(network.bridge)) - {device}:
                return None
            try:
                host.remove(device)
                host.remove(network.bridge)
            except NetlinkError:
                return None  # someone (an operator) took it already; nothing of ours is left
        return f"{device} and {network.bridge} (no guest of the network left on this node)"
