"""What a zone's network is made from, as the CLC hands it to the CC, and the plan the CC
builds from it (MANAGED mode, as Eucalyptus laid it out; see ARCHITECTURE.md).

The CLC allocates (network tags, private and public addresses, MACs) and owns the security
groups and their rules; the CC turns those into one `NetworkPlan` per zone with a pure
function (cc/network/plan.py) and applies it with a driver (`plan` records it, `linux` builds
it with iproute2, iptables-restore and dnsmasq).

Routes (on the CC, signed):
  PUT  /internal/network       NetworkIntent -> NetworkPlanView   (the whole intent, idempotent)
  GET  /internal/network                     -> NetworkPlanView
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CC_NETWORK_ROUTE = "/internal/network"

VnetMode = Literal["MANAGED", "MANAGED-NOVLAN", "SYSTEM"]
Transport = Literal["vlan", "vxlan"]


class GroupRef(BaseModel):
    account_id: str
    group_id: str


class IngressRule(BaseModel):
    """One stored rule: one protocol and port range (or ICMP type and code) from one source."""
    protocol: Literal["tcp", "udp", "icmp", "-1"]
    from_port: int | None = None        # ICMP: the type (-1 any)
    to_port: int | None = None          # ICMP: the code (-1 any)
    cidr: str | None = None
    source: GroupRef | None = None


class SecurityGroupIntent(BaseModel):
    account_id: str
    group_id: str
    name: str
    rules: list[IngressRule] = Field(default_factory=list)


class InstanceAddresses(BaseModel):
    instance_id: str
    account_id: str
    group_id: str                       # the group whose network the instance is on (its first)
    vlan: int | None                    # network index; a VLAN tag / VNI in MANAGED mode
    mac: str
    private_ip: str | None
    public_ip: str | None = None        # dynamic or elastic: the rules are the same
    node: str | None = None             # the node id it runs on, when placed


class NetworkSettings(BaseModel):
    mode: VnetMode = "MANAGED"
    transport: Transport = "vxlan"
    subnet: str = "172.31.0.0"
    netmask: str = "255.255.0.0"
    addrs_per_net: int = 32
    dns: str = "8.8.8.8"
    public_interface: str = "eth0"
    private_interface: str = "eth0"
    bridge: str = "br0"                 # MANAGED-NOVLAN's one bridge
    metadata_host: str = "127.0.0.1"    # where 169.254.169.254:80 is sent: the CLC
    metadata_port: int = 8773
    lease_seconds: int = 1200


class NetworkIntent(BaseModel):
    settings: NetworkSettings
    groups: list[SecurityGroupIntent]
    instances: list[InstanceAddresses]  # live ones only (not terminated)
    # The user requests whose changes this intent carries (the CLC sends one intent for a burst
    # of them): the CC records its rule diff in each one's trace. Not part of what is planned.
    for_requests: list[str] = Field(default_factory=list)


class NetworkView(BaseModel):
    vlan: int
    account_id: str
    group_id: str
    group_name: str
    cidr: str                           # e.g. 172.31.0.64/27
    gateway: str                        # .1: the CC's address on the bridge
    broadcast: str
    reserved: list[str]                 # network, gateway, broadcast
    bridge: str
    device: str | None                  # vx<vlan> or <iface>.<vlan>; None without tags
    instances: list[str]


class LeaseView(BaseModel):
    instance_id: str
    mac: str
    private_ip: str
    public_ip: str | None
    vlan: int
    node: str | None


class NetworkPlanView(BaseModel):
    """The plan, whole and readable: what `eucasim network show` prints and the console draws."""
    mode: VnetMode
    networks: list[NetworkView]
    leases: list[LeaseView]
    iptables: str                       # iptables-restore input for eucasim's own chains
    dnsmasq: dict[str, str]             # bridge -> dnsmasq configuration (without file paths)
    dhcp_hosts: dict[str, str]          # bridge -> its dhcp-hostsfile (MAC,address,name lines)
    node_networks: dict[str, list[int]] = Field(default_factory=dict)  # node -> vlans it needs
    version: int = 0
    diff: list[str] = Field(default_factory=list)  # rule lines added (+) and removed (-) last
