"""The zone's network as a pure function of its intent: which networks exist (one per
(account, security group) with a live instance, as Eucalyptus gives them), their addresses,
the DHCP leases, the iptables rules and the dnsmasq configuration. Nothing here touches the
host; the drivers in cc/network/ apply what this returns."""

from __future__ import annotations

import ipaddress

from cc.network import dhcp, rules
from services.messages.network import (LeaseView, NetworkIntent, NetworkPlanView, NetworkView,
                                       SecurityGroupIntent)
from services.vnet import network_of, whole_subnet


def bridge_of(intent: NetworkIntent, vlan: int) -> str:
    return f"eucabr{vlan}" if intent.settings.mode == "MANAGED" else intent.settings.bridge


def device_of(intent: NetworkIntent, vlan: int) -> str | None:
    """The tagged device that carries network `vlan` between hosts (MANAGED only): a VXLAN
    device with VNI = the tag where the kernel or the switch cannot do 802.1Q."""
    settings = intent.settings
    if settings.mode != "MANAGED":
        return None
    if settings.transport == "vxlan":
        return f"vx{vlan}"
    return f"{settings.private_interface}.{vlan}"


def _networks(intent: NetworkIntent) -> list[NetworkView]:
    settings = intent.settings
    groups: dict[str, SecurityGroupIntent] = {g.group_id: g for g in intent.groups}
    members: dict[int, list[str]] = {}
    owner: dict[int, tuple[str, str]] = {}
    for inst in sorted(intent.instances, key=lambda i: i.instance_id):
        if inst.vlan is None or inst.private_ip is None:
            continue
        members.setdefault(inst.vlan, []).append(inst.instance_id)
        owner.setdefault(inst.vlan, (inst.account_id, inst.group_id))
    views = []
    for vlan in sorted(members):
        net = network_of(settings.subnet, settings.netmask, settings.addrs_per_net, vlan)
        account_id, group_id = owner[vlan]
        gateway = str(net.network_address + 1)
        views.append(NetworkView(
            vlan=vlan, account_id=account_id, group_id=group_id,
            group_name=groups[group_id].name if group_id in groups else group_id,
            cidr=str(net), gateway=gateway, broadcast=str(net.broadcast_address),
            reserved=[str(net.network_address), gateway, str(net.broadcast_address)],
            bridge=bridge_of(intent, vlan), device=device_of(intent, vlan),
            instances=members[vlan]))
    return views


def _leases(intent: NetworkIntent) -> list[LeaseView]:
    return [LeaseView(instance_id=i.instance_id, mac=i.mac, private_ip=i.private_ip,
                      public_ip=i.public_ip, vlan=i.vlan, node=i.node)
            for i in sorted(intent.instances, key=lambda i: (i.vlan or 0, i.private_ip or ""))
            if i.vlan is not None and i.private_ip is not None]


def _node_networks(leases: list[LeaseView]) -> dict[str, list[int]]:
    needed: dict[str, set[int]] = {}
    for lease in leases:
        if lease.node:
            needed.setdefault(lease.node, set()).add(lease.vlan)
    return {node: sorted(vlans) for node, vlans in sorted(needed.items())}


def build(intent: NetworkIntent) -> NetworkPlanView:
    """The whole plan. SYSTEM mode has none: instances use the site's own network."""
    if intent.settings.mode == "SYSTEM":
        return NetworkPlanView(mode="SYSTEM", networks=[], leases=[], iptables="", dnsmasq={},
                               dhcp_hosts={})
    networks = _networks(intent)
    leases = _leases(intent)
    subnet = whole_subnet(intent.settings.subnet, intent.settings.netmask)
    return NetworkPlanView(
        mode=intent.settings.mode, networks=networks, leases=leases,
        iptables=rules.render(intent, networks, leases, subnet),
        dnsmasq=dhcp.configs(intent.settings, networks),
        dhcp_hosts=dhcp.hosts(networks, leases),
        node_networks=_node_networks(leases))


def rule_lines(iptables: str) -> list[str]:
    """The rules of an iptables-restore text, without tables, chain declarations and COMMIT."""
    return [line for line in iptables.splitlines() if line.startswith("-A ")]


def diff(before: str, after: str) -> list[str]:
    """What changed between two plans' rules, as `+ rule` and `- rule` lines (for the trace)."""
    old, new = rule_lines(before), rule_lines(after)
    old_set, new_set = set(old), set(new)
    return ([f"- {line}" for line in old if line not in new_set]
            + [f"+ {line}" for line in new if line not in old_set])


def in_subnet(address: str, cidr: str) -> bool:
    return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(cidr)
