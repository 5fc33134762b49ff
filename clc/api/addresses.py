"""AllocateAddress, AssociateAddress, DisassociateAddress, ReleaseAddress and
DescribeAddresses: elastic IPs out of the cloud's public pool (the rules: clc/addresses.py)."""

from __future__ import annotations

from typing import Any

from clc import addresses, tagging
from clc.addresses import AddressView
from clc.api.query import apply_filters
from clc.api.registry import Context, action
from clc.instances import check_ids, owned
from services.errors import EC2Error

RESOURCE_TYPE = "elastic-ip"
DOMAINS = ("standard", "vpc")


def _allocation_not_found(allocation_id: str) -> EC2Error:
    return EC2Error("InvalidAllocationID.NotFound", f"The allocation ID '{allocation_id}' does not exist")


tagging.register_resource("eipalloc", RESOURCE_TYPE,
                          lambda db, account_id, rid: _owns_allocation(db, account_id, rid),
                          _allocation_not_found)


def _owns_allocation(db: Any, account_id: str, allocation_id: str) -> bool:
    try:
        addresses.find(db, account_id, allocation_id=allocation_id)
    except EC2Error:
        return False
    return True


def _network_changed(ctx: Context, why: str) -> None:
    ctx.trace("decided", why)
    ctx.network_changed()


@action("AllocateAddress")
def allocate_address(ctx: Context, Domain: str | None = None, Address: str | None = None,
                     TagSpecifications: list[dict[str, Any]] | None = None, **_: Any) -> dict:
    domain = Domain or "standard"
    if domain not in DOMAINS:
        raise EC2Error("InvalidParameterValue", f"Invalid value '{domain}' for domain.")
    for spec in TagSpecifications or []:
        tagging.validated_tags(spec.get("Tags"))
    with addresses.LOCK:
        address = addresses.allocate(ctx.db, ctx.config, ctx.account_id, domain, Address)
        tagging.apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications, RESOURCE_TYPE,
                                         address.allocation_id)
        ctx.db.commit()
    ctx.trace("decided", f"allocated {address.public_ip} ({address.allocation_id})")
    return {"PublicIp": address.public_ip, "AllocationId": address.allocation_id,
            "Domain": address.domain, "NetworkBorderGroup": ctx.config.REGION}


@action("AssociateAddress")
def associate_address(ctx: Context, InstanceId: str | None = None, PublicIp: str | None = None,
                      AllocationId: str | None = None, AllowReassociation: bool = False,
                      NetworkInterfaceId: str | None = None, PrivateIpAddress: str | None = None) -> dict:
    if NetworkInterfaceId:
        raise EC2Error("InvalidParameterCombination",
                       "This cloud has no network interfaces (EC2-Classic networking): use InstanceId.")
    if not InstanceId:
        raise EC2Error("MissingParameter", "The request must contain the parameter InstanceId")
    with addresses.LOCK:
        address = addresses.find(ctx.db, ctx.account_id, public_ip=PublicIp, allocation_id=AllocationId)
        [instance] = owned(ctx.db, ctx.account_id, check_ids([InstanceId]))
        if PrivateIpAddress and PrivateIpAddress != instance.private_ip:
            raise EC2Error("InvalidParameterValue",
                           f"The instance {instance.id} has no private address {PrivateIpAddress}.")
        association_id = addresses.associate(ctx.db, ctx.config, address, instance, AllowReassociation)
        _network_changed(ctx, f"{address.public_ip} -> {instance.id} ({instance.private_ip})")
        ctx.db.commit()
    return {"AssociationId": association_id}


@action("DisassociateAddress")
def disassociate_address(ctx: Context, PublicIp: str | None = None,
                         AssociationId: str | None = None) -> dict:
    with addresses.LOCK:
        if AssociationId:
            address = addresses.by_association(ctx.db, ctx.account_id, AssociationId)
        else:
            address = addresses.find(ctx.db, ctx.account_id, public_ip=PublicIp)
        instance = addresses.disassociate(ctx.db, ctx.config, address)
        if instance is not None:
            _network_changed(ctx, f"{address.public_ip} no longer -> {instance.id}; "
                                  f"it now has {instance.public_ip or 'no public address'}")
        ctx.db.commit()
    return {}


@action("ReleaseAddress")
def release_address(ctx: Context, PublicIp: str | None = None, AllocationId: str | None = None,
                    NetworkBorderGroup: str | None = None) -> dict:
    with addresses.LOCK:
        address = addresses.find(ctx.db, ctx.account_id, public_ip=PublicIp, allocation_id=AllocationId)
        addresses.release(ctx.db, address)
        tagging.delete_all_tags(ctx.db, ctx.account_id, address.allocation_id)
        ctx.db.commit()
    ctx.trace("decided", f"released {address.public_ip}")
    return {}


def _item(view: AddressView, tags: dict[str, str]) -> dict[str, Any]:
    address, instance = view.address, view.instance
    item: dict[str, Any] = {"PublicIp": address.public_ip, "AllocationId": address.allocation_id,
                            "Domain": address.domain, "PublicIpv4Pool": "eucalyptus",
                            "Tags": tagging.tag_list(tags)}
    if instance is not None:
        item.update(InstanceId=instance.id, AssociationId=address.association_id,
                    PrivateIpAddress=instance.private_ip)
    return item


def _verbose(ctx: Context) -> dict:
    """Eucalyptus's administrator view: every address of the pool, and who holds it."""
    items = []
    for ip, elastic, holder in addresses.pool_listing(ctx.db, ctx.config):
        if elastic is not None:
            who = f"{holder.id if holder else 'nobody'} (arn:aws:iam::{elastic.account_id}:root)"
        elif holder is not None:
            who = f"{holder.id} (dynamic, arn:aws:iam::{holder.account_id}:root)"
        else:
            who = "available"
        items.append({"PublicIp": ip, "InstanceId": who, "Domain": "standard",
                      **({"AllocationId": elastic.allocation_id} if elastic else {})})
    return {"Addresses": items}


@action("DescribeAddresses")
def describe_addresses(ctx: Context, PublicIps: list[str] | None = None,
                       AllocationIds: list[str] | None = None,
                       Filters: list[dict[str, Any]] | None = None) -> dict:
    if PublicIps == ["verbose"] and ctx.is_admin:
        return _verbose(ctx)
    rows = addresses.owned(ctx.db, ctx.account_id)
    if PublicIps:
        known = {a.public_ip for a in rows}
        for ip in PublicIps:
            if ip not in known:
                raise addresses.not_found(ip)
        rows = [a for a in rows if a.public_ip in PublicIps]
    if AllocationIds:
        known = {a.allocation_id for a in rows}
        missing = [a for a in AllocationIds if a not in known]
        if missing:
            raise _allocation_not_found(missing[0])
        rows = [a for a in rows if a.allocation_id in AllocationIds]
    views = [addresses.view(ctx.db, a) for a in rows]
    tags = tagging.tags_by_resource(ctx.db, ctx.account_id, RESOURCE_TYPE)
    tags_of = lambda v: tags.get(v.address.allocation_id, {})  # noqa: E731
    views = apply_filters(views, Filters, {
        "allocation-id": lambda v: v.address.allocation_id,
        "association-id": lambda v: v.address.association_id if v.instance else None,
        "domain": lambda v: v.address.domain,
        "instance-id": lambda v: v.instance.id if v.instance else None,
        "public-ip": lambda v: v.address.public_ip,
        "private-ip-address": lambda v: v.instance.private_ip if v.instance else None,
        "network-border-group": lambda v: ctx.config.REGION,
        "public-ipv4-pool": lambda v: "eucalyptus"}, tags_of)
    return {"Addresses": [_item(v, tags_of(v)) for v in views]}
