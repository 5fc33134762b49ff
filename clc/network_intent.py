"""What a zone's network must be, from the CLC's records: the MANAGED settings, every live
instance's addresses (on its first group's network) and the rules of the groups involved. The
CC plans and applies it (cc/network/); the CLC sends the whole intent after every change and
every reconcile round, so a lost message costs one round."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc.models.instances import Instance, InstanceGroup
from clc.models.resources import SecurityGroup, SecurityGroupRule
from services.config import CloudConfig
from services.messages.network import (GroupRef, IngressRule, InstanceAddresses, NetworkIntent,
                                       NetworkSettings, SecurityGroupIntent)

# Instances that hold their addresses (a stopped EBS-backed instance keeps its private one).
HOLDING = ("pending", "running", "shutting-down", "stopping", "stopped")


def settings_of(config: CloudConfig) -> NetworkSettings:
    host, _, port = (config.VNET_METADATA or f"{config.PUBLIC_HOST}:{config.CLC_PORT}").partition(":")
    return NetworkSettings(
        mode=config.VNET_MODE, transport=config.VNET_TRANSPORT, subnet=config.VNET_SUBNET,
        netmask=config.VNET_NETMASK, addrs_per_net=config.VNET_ADDRSPERNET, dns=config.VNET_DNS,
        public_interface=config.VNET_PUBINTERFACE, private_interface=config.VNET_PRIVINTERFACE,
        bridge=config.VNET_BRIDGE, metadata_host=host, metadata_port=int(port or config.CLC_PORT))


def _first_groups(db: Session, zone: str) -> dict[str, str]:
    """Each holding instance's first group (the one its network belongs to), by a join rather
    than an IN list of every instance id: the intent is made after every launch, and binding
    one parameter per live instance cost more than the query itself."""
    first: dict[str, str] = {}
    rows = db.execute(select(InstanceGroup.instance_id, InstanceGroup.group_id)
                      .join(Instance, Instance.id == InstanceGroup.instance_id)
                      .where(Instance.zone == zone, Instance.state.in_(HOLDING))
                      .order_by(InstanceGroup.instance_id, InstanceGroup.id))
    for instance_id, group_id in rows:
        first.setdefault(instance_id, group_id)
    return first


def intent_for(db: Session, config: CloudConfig, zone: str) -> NetworkIntent:
    # Plain rows, not ORM objects: nothing here is changed, and the identity map of a few
    # thousand instances is most of the cost otherwise.
    instances = db.execute(select(Instance.id, Instance.account_id, Instance.vlan, Instance.mac,
                                  Instance.private_ip, Instance.public_ip, Instance.node)
                           .where(Instance.zone == zone, Instance.state.in_(HOLDING))
                           .order_by(Instance.id)).all()
    first = _first_groups(db, zone)
    group_ids = set(first.values())
    rules = list(db.scalars(select(SecurityGroupRule).where(SecurityGroupRule.group_id.in_(group_ids))))
    groups = {g.id: g for g in db.scalars(select(SecurityGroup).where(SecurityGroup.id.in_(group_ids)))}
    by_group: dict[str, list[IngressRule]] = {g: [] for g in groups}
    for rule in rules:
        source = (GroupRef(account_id=rule.source_account_id or groups[rule.group_id].account_id,
                           group_id=rule.source_group_id) if rule.source_group_id else None)
        by_group[rule.group_id].append(IngressRule(
            protocol=rule.protocol, from_port=rule.from_port, to_port=rule.to_port,  # type: ignore[arg-type]
            cidr=rule.cidr, source=source))
    return NetworkIntent(
        settings=settings_of(config),
        groups=[SecurityGroupIntent(account_id=g.account_id, group_id=g.id, name=g.name,
                                    rules=by_group[g.id]) for g in sorted(groups.values(), key=lambda g: g.id)],
        instances=[InstanceAddresses(instance_id=i.id, account_id=i.account_id,
                                     group_id=first.get(i.id, ""), vlan=i.vlan, mac=i.mac or "",
                                     private_ip=i.private_ip, public_ip=i.public_ip, node=i.node)
                   for i in instances if i.id in first])
