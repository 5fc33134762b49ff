"""The node's half of MANAGED networking with the `linux` driver: before a guest starts, the
bridge of its network and the VXLAN device that carries it to the CC (VNI = the network's
tag, ending at the CC's underlay address, which comes with the instance), as the CC builds the
other end. Idempotent: the second instance of a network finds both there. In simulated mode
(`plan`) there is nothing to build and the NC never needs root.

One build at a time: the NC prepares the instances of one launch in parallel threads, and two
of them on the same network both looking for its bridge before either made it both try to add
it, and the second fails with EEXIST (its instance then fails to boot)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from services.hostnet import HostNetwork
from services.messages.node import InstanceNetwork

_BUILDING = threading.Lock()  # the host's devices are one per process's namespace: one lock


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
        return f"{device} (VNI {network.vlan}) to {network.tunnel_remote} in {network.bridge}"
