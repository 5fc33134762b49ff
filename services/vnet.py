"""The arithmetic of MANAGED-mode networks, shared by the CLC (which allocates) and the CC
(which builds): network `v` of VNET_SUBNET is VNET_ADDRSPERNET addresses long and starts
`v * VNET_ADDRSPERNET` addresses in; its first address is the network, `.1` the CC's gateway,
the last the broadcast address."""

from __future__ import annotations

import ipaddress

# Eucalyptus leaves the first network indexes to the host's own networks.
FIRST_NETWORK = 2
# In each network: .0 is the network, .1 the CC's gateway, the last the broadcast address.
FIRST_HOST = 2


def whole_subnet(subnet: str, netmask: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{subnet}/{netmask}", strict=False)


def network_of(subnet: str, netmask: str, per_net: int, vlan: int) -> ipaddress.IPv4Network:
    whole = whole_subnet(subnet, netmask)
    prefix = 32 - (per_net - 1).bit_length()
    return ipaddress.IPv4Network((int(whole.network_address) + vlan * per_net, prefix))


def public_pool(spec: str) -> list[str]:
    """VNET_PUBLICIPS: `a.b.c.d-a.b.c.e` ranges, single addresses and CIDRs (every host
    address of it), spaces or commas apart, in the order given, each once."""
    pool: dict[str, None] = {}
    for part in spec.replace(",", " ").split():
        if "/" in part:
            pool.update((str(ip), None) for ip in ipaddress.IPv4Network(part, strict=False).hosts())
            continue
        first, dash, last = part.partition("-")
        start = ipaddress.IPv4Address(first)
        end = ipaddress.IPv4Address(last) if dash else start
        if end < start:
            raise ValueError(f"VNET_PUBLICIPS: the range {part} ends before it starts")
        pool.update((str(ipaddress.IPv4Address(n)), None) for n in range(int(start), int(end) + 1))
    return list(pool)
