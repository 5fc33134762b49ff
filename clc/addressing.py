"""MANAGED-mode addresses, as Eucalyptus hands them out: every security group of an account
gets a private network of VNET_ADDRSPERNET addresses carved out of VNET_SUBNET/VNET_NETMASK
(its index is the VLAN tag), an instance gets the lowest free address of its first group's
network and, from VNET_PUBLICIPS, the lowest free public address; its MAC is `d0:0d:` + the
hex digits of its id.

Nothing is stored apart from the instances themselves: what is taken is read from the
instances that still hold addresses (every state but terminated), so a terminated instance
frees its addresses without any bookkeeping. Callers serialise allocation up to the commit
that records the instances (clc/launch.py's lock, around database work only), so two launches
never pick the same address."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc import addresses
from clc.models.instances import Instance, InstanceGroup
from services.config import CloudConfig
from services.errors import EC2Error
from services.messages.node import InstanceNetwork, instance_mac
from services.vnet import FIRST_HOST, FIRST_NETWORK, network_of, whole_subnet



@dataclass(frozen=True)
class Addresses:
    mac: str
    private_ip: str | None
    public_ip: str | None
    vlan: int | None        # the network's index; a VLAN tag only in MANAGED mode
    bridge: str
    tagged: bool = True

    def network(self) -> InstanceNetwork:
        return InstanceNetwork(mac=self.mac, bridge=self.bridge, private_ip=self.private_ip,
                               public_ip=self.public_ip, vlan=self.vlan if self.tagged else None)


def _dotted(host: int) -> str:
    """str(ipaddress.IPv4Address(host)), without building the object."""
    return f"{host >> 24}.{(host >> 16) & 255}.{(host >> 8) & 255}.{host & 255}"


_PLANS: dict[tuple[object, ...], "AddressPlan"] = {}


class AddressPlan:
    @staticmethod
    def of(config: CloudConfig) -> AddressPlan:
        """The plan of `config`'s network settings, made once (the public pool is a list)."""
        key = (config.VNET_MODE, config.VNET_BRIDGE, config.VNET_ADDRSPERNET,
               config.VNET_SUBNET, config.VNET_NETMASK, config.VNET_PUBLICIPS)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = AddressPlan(config)
        return plan

    def __init__(self, config: CloudConfig) -> None:
        self.mode = config.VNET_MODE
        self.bridge = config.VNET_BRIDGE
        self.per_net = config.VNET_ADDRSPERNET
        self.subnet = whole_subnet(config.VNET_SUBNET, config.VNET_NETMASK)
        self.networks = self.subnet.num_addresses // self.per_net
        self.config = config

    def network_of(self, db: Session, account_id: str, group_id: str) -> int:
        """The VLAN of a group's network: the one its live instances use, else the lowest free."""
        taken = db.scalars(
            select(Instance.vlan).join(InstanceGroup, InstanceGroup.instance_id == Instance.id)
            .where(Instance.account_id == account_id, InstanceGroup.group_id == group_id,
                   Instance.state != "terminated", Instance.vlan.is_not(None)).limit(1)).first()
        if taken is not None:
            return taken
        used = set(db.scalars(select(Instance.vlan).where(Instance.state != "terminated",
                                                          Instance.vlan.is_not(None))))
        for vlan in range(FIRST_NETWORK, self.networks):
            if vlan not in used:
                return vlan
        raise EC2Error("InsufficientFreeAddressesInSubnet",
                       f"Every one of the {self.networks} private networks of {self.subnet} is in use.")

    def allocate(self, db: Session, account_id: str, group_id: str,
                 instance_ids: list[str]) -> dict[str, Addresses]:
        macs = {i: instance_mac(i) for i in instance_ids}
        if self.mode == "SYSTEM":  # addresses come from the site's own DHCP server
            return {i: Addresses(macs[i], None, None, None, self.bridge, tagged=False)
                    for i in instance_ids}
        vlan = self.network_of(db, account_id, group_id)
        base = int(network_of(self.config.VNET_SUBNET, self.config.VNET_NETMASK, self.per_net,
                              vlan).network_address)
        # Compared as text: every stored private address was written by this function, in
        # ipaddress's own form, and parsing each taken one back cost more than the query.
        taken = set(db.scalars(select(Instance.private_ip).where(
            Instance.state != "terminated", Instance.vlan == vlan, Instance.private_ip.is_not(None))))
        free_private: list[str] = []
        for host in range(base + FIRST_HOST, base + self.per_net - 1):  # lowest first, stop when enough
            ip = _dotted(host)
            if ip not in taken:
                free_private.append(ip)
                if len(free_private) == len(instance_ids):
                    break
        if len(free_private) < len(instance_ids):
            raise EC2Error("InsufficientFreeAddressesInSubnet",
                           f"The network of security group {group_id} ({vlan}) has "
                           f"{len(free_private)} free addresses; {len(instance_ids)} are needed.")
        free_public = iter(addresses.dynamic_for(db, self.config, len(instance_ids)))
        bridge = f"eucabr{vlan}" if self.mode == "MANAGED" else self.bridge
        return {i: Addresses(macs[i], free_private[n], next(free_public, None), vlan, bridge,
                             tagged=self.mode == "MANAGED")
                for n, i in enumerate(instance_ids)}

