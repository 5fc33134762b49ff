"""dnsmasq for a plan: one dnsmasq per bridge, answering DHCP only (port=0: no DNS), with a
static range per network and one host line per instance (MAC -> address, named by its id),
kept in a dhcp-hostsfile so that a changed plan is a file rewrite and a SIGHUP, not a restart."""

from __future__ import annotations

import ipaddress

from services.messages.network import LeaseView, NetworkSettings, NetworkView
from services.vnet import FIRST_HOST


def configs(settings: NetworkSettings, networks: list[NetworkView]) -> dict[str, str]:
    """bridge -> the dnsmasq options (the driver adds its file paths)."""
    by_bridge: dict[str, list[NetworkView]] = {}
    for network in networks:
        by_bridge.setdefault(network.bridge, []).append(network)
    texts: dict[str, str] = {}
    for bridge, nets in sorted(by_bridge.items()):
        lines = ["port=0", f"interface={bridge}", "bind-interfaces", "except-interface=lo",
                 "dhcp-authoritative"]
        for net in nets:
            mask = ipaddress.IPv4Network(net.cidr).netmask
            tag = f"net{net.vlan}"
            # dnsmasq reads the subnet from a static range's start: the first instance address.
            start = ipaddress.IPv4Network(net.cidr).network_address + FIRST_HOST
            lines += [f"dhcp-range=set:{tag},{start},static,{mask},{settings.lease_seconds}",
                      f"dhcp-option=tag:{tag},option:router,{net.gateway}",
                      f"dhcp-option=tag:{tag},option:dns-server,{settings.dns}"]
        texts[bridge] = "\n".join(lines) + "\n"
    return texts


def hosts(networks: list[NetworkView], leases: list[LeaseView]) -> dict[str, str]:
    bridge_of = {n.vlan: n.bridge for n in networks}
    lines: dict[str, list[str]] = {bridge: [] for bridge in bridge_of.values()}
    for lease in leases:
        bridge = bridge_of.get(lease.vlan)
        if bridge is not None:
            lines[bridge].append(f"{lease.mac},{lease.private_ip},{lease.instance_id}")
    return {bridge: "".join(f"{line}\n" for line in entries) for bridge, entries in sorted(lines.items())}
