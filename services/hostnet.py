"""The host's network devices as MANAGED mode needs them, on the CC and on every node alike:
a bridge per network, the tagged device that carries it between hosts (VXLAN with VNI = the
network's tag, or an 802.1Q VLAN device), and addresses. Every call is idempotent (asking for
what exists changes nothing), so a driver can re-apply a whole plan after a restart without
cutting live traffic. Built on pyroute2, in the network namespace of the calling process."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from pyroute2 import IPRoute

VXLAN_PORT = 4789
# Eucalyptus's bridges and eucasim's tunnel devices: the only links this module ever deletes.
OWNED_PREFIXES = ("eucabr", "vx")


class HostNetwork:
    def __init__(self) -> None:
        self._ip = IPRoute()

    def close(self) -> None:
        self._ip.close()

    def __enter__(self) -> HostNetwork:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- looking ------------------------------------------------------------------------------

    def index(self, name: str) -> int | None:
        found = self._ip.link_lookup(ifname=name)
        return found[0] if found else None

    def links(self) -> list[str]:
        return [link.get_attr("IFLA_IFNAME") for link in self._ip.get_links()]

    def ports(self, bridge: str) -> list[str]:
        """The devices plugged into `bridge` (its taps, veths and tunnel ends)."""
        index = self.index(bridge)
        if index is None:
            return []
        return [link.get_attr("IFLA_IFNAME") for link in self._ip.get_links()
                if link.get_attr("IFLA_MASTER") == index]

    def addresses(self, name: str) -> set[str]:
        index = self.index(name)
        if index is None:
            return set()
        return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                for a in self._ip.get_addr(index=index, family=2)}

    # -- making -------------------------------------------------------------------------------

    def _add(self, name: str, **spec: Any) -> int:
        index = self.index(name)
        if index is None:
            self._ip.link("add", ifname=name, **spec)
            index = self.index(name)
            assert index is not None
        return index

    def bridge(self, name: str) -> int:
        """A bridge that forwards at once (no STP, no forwarding delay), up."""
        index = self._add(name, kind="bridge", br_stp_state=0, br_forward_delay=0)
        self._ip.link("set", index=index, state="up")
        return index

    def vxlan(self, name: str, vni: int, local: str, underlay: str, bridge: str,
              remotes: Iterable[str]) -> int:
        """A unicast VXLAN device in `bridge`, flooding to each remote host (one FDB entry per
        remote: no multicast needed on the wire)."""
        parent = self.index(underlay)
        if parent is None:
            raise LookupError(f"no device {underlay} to carry VXLAN {vni}")
        index = self._add(name, kind="vxlan", vxlan_id=vni, vxlan_local=local, vxlan_link=parent,
                          vxlan_port=VXLAN_PORT, vxlan_learning=1)
        self._ip.link("set", index=index, master=self.bridge(bridge), state="up")
        wanted = set(remotes)
        present = {entry.get_attr("NDA_DST") for entry in self._ip.fdb("dump", ifindex=index)
                   if entry.get_attr("NDA_LLADDR") == "00:00:00:00:00:00"}
        for remote in sorted(wanted - present):
            self._ip.fdb("append", ifindex=index, lladdr="00:00:00:00:00:00", dst=remote)
        for remote in sorted(present - wanted - {None}):
            self._ip.fdb("del", ifindex=index, lladdr="00:00:00:00:00:00", dst=remote)
        return index

    def vlan(self, name: str, tag: int, underlay: str, bridge: str) -> int:
        parent = self.index(underlay)
        if parent is None:
            raise LookupError(f"no device {underlay} to carry VLAN {tag}")
        index = self._add(name, kind="vlan", link=parent, vlan_id=tag)
        self._ip.link("set", index=index, master=self.bridge(bridge), state="up")
        return index

    def keep_addresses(self, name: str, wanted: Iterable[str], owned: Iterable[str] = ()) -> None:
        """Make `wanted` (a.b.c.d/len) present on `name`; remove those of `owned` not wanted.
        Addresses eucasim did not put there are never touched."""
        index = self.index(name)
        if index is None:
            raise LookupError(f"no device {name}")
        present = self.addresses(name)
        want = {str(ipaddress.IPv4Interface(a)) for a in wanted}
        for address in sorted(want - present):
            ip, _, length = address.partition("/")
            self._ip.addr("add", index=index, address=ip, prefixlen=int(length))
        for address in sorted((present & {str(ipaddress.IPv4Interface(a)) for a in owned}) - want):
            ip, _, length = address.partition("/")
            self._ip.addr("del", index=index, address=ip, prefixlen=int(length))

    def attach(self, name: str, bridge: str) -> None:
        """Put an existing device (a guest's tap, a veth) into a bridge, up."""
        index = self.index(name)
        if index is None:
            raise LookupError(f"no device {name}")
        self._ip.link("set", index=index, master=self.bridge(bridge), state="up")

    def remove(self, name: str) -> None:
        if not name.startswith(OWNED_PREFIXES):
            raise ValueError(f"{name} is not a device eucasim made")
        index = self.index(name)
        if index is not None:
            self._ip.link("del", index=index)
