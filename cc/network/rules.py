"""The iptables rules of a plan, as iptables-restore input for eucasim's own chains only.

The host's built-in chains get one jump each into ours (added once by the `linux` driver);
everything else lives in chains eucasim owns and rebuilds whole on every apply, so a deleted
group or a terminated instance can leave no stale rule behind (Eucalyptus's most reported
networking pain) and the host's other rules are never touched.

filter, EUCA-FORWARD: established traffic passes; traffic to a group's network goes through
that group's chain; anything else addressed to the instance subnet is dropped (the default
DROP of Eucalyptus's FORWARD, scoped to the instances instead of the whole host); instances
may go out. A group's chain accepts its own network (Eucalyptus: traffic within a group) and
each ingress rule, from a CIDR or from a source group's network.

nat: the metadata address is sent to the CLC; each public address is DNATed to its instance
(PREROUTING and OUTPUT, so the CC itself can reach it) and the instance SNATed to it on the
way out; the rest of the subnet is masqueraded."""

from __future__ import annotations

import ipaddress

from services.messages.network import (IngressRule, LeaseView, NetworkIntent, NetworkView,
                                       SecurityGroupIntent)

FORWARD = "EUCA-FORWARD"
PREROUTING = "EUCA-PREROUTING"
OUTPUT = "EUCA-OUTPUT"
POSTROUTING = "EUCA-POSTROUTING"
# The built-in chain each of ours hangs from: (table, built-in, ours).
HOOKS = (("filter", "FORWARD", FORWARD), ("nat", "PREROUTING", PREROUTING),
         ("nat", "OUTPUT", OUTPUT), ("nat", "POSTROUTING", POSTROUTING))
METADATA_IP = "169.254.169.254"


def group_chain(group_id: str) -> str:
    """One chain per group; group ids are unique in the cloud and short enough (≤ 28)."""
    return f"EU-{group_id}"[:28]


def _match(rule: IngressRule) -> str:
    if rule.protocol == "-1":
        return ""
    if rule.protocol == "icmp":
        kind, code = rule.from_port, rule.to_port
        if kind is None or kind == -1:
            return "-p icmp"
        return f"-p icmp --icmp-type {kind}" + (f"/{code}" if code is not None and code != -1 else "")
    low, high = rule.from_port, rule.to_port
    if low is None or high is None or (low, high) == (0, 65535):
        return f"-p {rule.protocol}"
    ports = str(low) if low == high else f"{low}:{high}"
    return f"-p {rule.protocol} -m {rule.protocol} --dport {ports}"


def _sources(rule: IngressRule, networks_of_group: dict[str, list[str]]) -> list[str]:
    if rule.cidr is not None:
        return [str(ipaddress.IPv4Network(rule.cidr, strict=False))]
    if rule.source is not None:  # a source group without a live instance has no network yet
        return networks_of_group.get(rule.source.group_id, [])
    return []


def _group_rules(chain: str, network: NetworkView, group: SecurityGroupIntent | None,
                 networks_of_group: dict[str, list[str]]) -> list[str]:
    lines = [f"-A {chain} -s {network.cidr} -j ACCEPT"]
    for rule in group.rules if group else []:
        match = _match(rule)
        for source in _sources(rule, networks_of_group):
            lines.append(" ".join(part for part in (f"-A {chain} -s {source}", match, "-j ACCEPT") if part))
    return list(dict.fromkeys(lines))  # the same rule twice (two CIDRs folding) is one line


def _filter(intent: NetworkIntent, networks: list[NetworkView], subnet: str) -> list[str]:
    groups = {g.group_id: g for g in intent.groups}
    networks_of_group: dict[str, list[str]] = {}
    for network in networks:
        networks_of_group.setdefault(network.group_id, []).append(network.cidr)
    chains = sorted({group_chain(n.group_id) for n in networks})
    lines = ["*filter", f":{FORWARD} - [0:0]", *(f":{c} - [0:0]" for c in chains),
             f"-A {FORWARD} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    lines += [f"-A {FORWARD} -d {n.cidr} -j {group_chain(n.group_id)}" for n in networks]
    lines += [f"-A {FORWARD} -d {subnet} -j DROP", f"-A {FORWARD} -s {subnet} -j ACCEPT"]
    for network in networks:
        lines += _group_rules(group_chain(network.group_id), network, groups.get(network.group_id),
                              networks_of_group)
    return [*dict.fromkeys(lines), "COMMIT"]


def _nat(intent: NetworkIntent, leases: list[LeaseView], subnet: str) -> list[str]:
    settings = intent.settings
    lines = ["*nat", f":{PREROUTING} - [0:0]", f":{OUTPUT} - [0:0]", f":{POSTROUTING} - [0:0]",
             f"-A {PREROUTING} -s {subnet} -d {METADATA_IP}/32 -p tcp -m tcp --dport 80 "
             f"-j DNAT --to-destination {settings.metadata_host}:{settings.metadata_port}"]
    public = [lease for lease in leases if lease.public_ip]
    for lease in public:
        lines.append(f"-A {PREROUTING} -d {lease.public_ip}/32 -j DNAT --to-destination {lease.private_ip}")
        lines.append(f"-A {OUTPUT} -d {lease.public_ip}/32 -j DNAT --to-destination {lease.private_ip}")
    for lease in public:
        lines.append(f"-A {POSTROUTING} -s {lease.private_ip}/32 ! -d {subnet} "
                     f"-j SNAT --to-source {lease.public_ip}")
    lines.append(f"-A {POSTROUTING} -s {subnet} ! -d {subnet} -j MASQUERADE")
    return [*lines, "COMMIT"]


def render(intent: NetworkIntent, networks: list[NetworkView], leases: list[LeaseView],
           subnet: ipaddress.IPv4Network) -> str:
    return "\n".join(_filter(intent, networks, str(subnet)) + _nat(intent, leases, str(subnet))) + "\n"
