"""Public addresses, as Eucalyptus gives them out of VNET_PUBLICIPS:

- an *elastic* address is allocated by an account and stays its own until released; it is
  associated with at most one live instance at a time;
- a *dynamic* address is what an instance gets at launch from what is left of the pool; when
  an elastic address is associated, the instance's dynamic one goes back to the pool, and when
  it is disassociated, the instance gets a new dynamic one (if any is left).

An instance's current public address is its `public_ip`, whichever kind it is, so
DescribeInstances and the metadata service show it at once. An association lasts only while
its instance lives: a terminated instance holds nothing, without any bookkeeping."""

from __future__ import annotations

import functools
import ipaddress
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc.models.addresses import ElasticAddress
from clc.models.instances import Instance
from services.config import CloudConfig
from services.errors import EC2Error
from services.ids import new_id
from services.vnet import public_pool

LIVE = ("pending", "running", "stopping", "stopped")

# Whoever hands out or moves public addresses (a launch, Allocate/Associate/Disassociate/
# ReleaseAddress) reads what is taken, decides and commits under this lock: two concurrent
# associations of one address then end with the last one everywhere, and no two instances
# get one address. Database work only, never a call to another service.
LOCK = threading.Lock()
ASSOCIABLE = ("pending", "running")


@dataclass(frozen=True)
class AddressView:
    """One elastic address as DescribeAddresses shows it."""
    address: ElasticAddress
    instance: Instance | None

    @property
    def associated(self) -> bool:
        return self.instance is not None


@functools.lru_cache(maxsize=8)
def _pool_of(spec: str) -> tuple[str, ...]:
    return tuple(public_pool(spec))


def pool(config: CloudConfig) -> list[str]:
    # Parsed once per setting: every launch asks, and the parse makes a string per address.
    return list(_pool_of(config.VNET_PUBLICIPS))


def taken(db: Session) -> set[str]:
    """Every elastic address and every address a live instance holds."""
    held = set(db.scalars(select(Instance.public_ip).where(Instance.state.in_(LIVE),
                                                           Instance.public_ip.is_not(None))))
    return held | set(db.scalars(select(ElasticAddress.public_ip)))


def free_addresses(db: Session, config: CloudConfig) -> list[str]:
    """The pool minus what is taken."""
    taken_now = taken(db)
    return [ip for ip in pool(config) if ip not in taken_now]


def dynamic_for(db: Session, config: CloudConfig, count: int) -> list[str | None]:
    """Dynamic public addresses for `count` new instances: as many as are free, then None."""
    taken_now = taken(db)
    free: list[str | None] = []
    for ip in _pool_of(config.VNET_PUBLICIPS):  # lowest first, stop when enough
        if len(free) == count:
            break
        if ip not in taken_now:
            free.append(ip)
    return free + [None] * (count - len(free))


def _instance_of(db: Session, address: ElasticAddress) -> Instance | None:
    if address.instance_id is None:
        return None
    instance = db.get(Instance, address.instance_id)
    if instance is None or instance.state not in LIVE or instance.public_ip != address.public_ip:
        return None
    return instance


def view(db: Session, address: ElasticAddress) -> AddressView:
    return AddressView(address, _instance_of(db, address))


def not_found(public_ip: str) -> EC2Error:
    """What a look-up by address answers for one that is not the caller's: the same whether
    it is free or another account's, so a Describe does not tell which addresses are taken."""
    _check_ip(public_ip)
    return EC2Error("InvalidAddress.NotFound", f"The address '{public_ip}' is not found.")


def _check_ip(public_ip: str) -> None:
    try:
        ipaddress.IPv4Address(public_ip)
    except ValueError:
        raise EC2Error("InvalidParameterValue",
                       f"Invalid value '{public_ip}' for PublicIp: not an IPv4 address.") from None


def find(db: Session, account_id: str, *, public_ip: str | None = None,
         allocation_id: str | None = None) -> ElasticAddress:
    """The account's elastic address, by its address or its allocation id."""
    if allocation_id:
        address = db.scalar(select(ElasticAddress).where(ElasticAddress.allocation_id == allocation_id))
        if address is None or address.account_id != account_id:
            raise EC2Error("InvalidAllocationID.NotFound",
                           f"The allocation ID '{allocation_id}' does not exist")
        return address
    if not public_ip:
        raise EC2Error("MissingParameter", "Either PublicIp or AllocationId must be specified.")
    _check_ip(public_ip)
    address = db.get(ElasticAddress, public_ip)
    if address is None:
        raise not_found(public_ip)
    if address.account_id != account_id:
        # EC2's answer to changing (releasing, moving) an address someone else holds.
        raise EC2Error("AuthFailure", f"The address '{public_ip}' does not belong to you.", 401)
    return address


def owned(db: Session, account_id: str | None) -> list[ElasticAddress]:
    """Every elastic address of the account (of every account when None), by address."""
    query = select(ElasticAddress)
    if account_id is not None:
        query = query.where(ElasticAddress.account_id == account_id)
    return sorted(db.scalars(query), key=lambda a: ipaddress.IPv4Address(a.public_ip))


def allocate(db: Session, config: CloudConfig, account_id: str, domain: str = "standard",
             wanted: str | None = None) -> ElasticAddress:
    free = free_addresses(db, config)
    if wanted is not None:
        _check_ip(wanted)
        if wanted not in pool(config):
            raise EC2Error("InvalidParameterValue",
                           f"The address '{wanted}' is not in this cloud's public pool.")
        if wanted not in free:
            raise EC2Error("InvalidAddress.InUse", f"The address '{wanted}' is already in use.")
        free = [wanted]
    if not free:
        raise EC2Error("AddressLimitExceeded",
                       f"The public address pool ({len(pool(config))} addresses, VNET_PUBLICIPS) "
                       "is exhausted: release an elastic IP or terminate an instance first.")
    address = ElasticAddress(public_ip=free[0], allocation_id=new_id("eipalloc", 17),
                             account_id=account_id, domain=domain)
    db.add(address)
    db.flush()
    return address


def _release_dynamic(instance: Instance) -> None:
    instance.public_ip = None  # back to the pool: nothing else holds it


def associate(db: Session, config: CloudConfig, address: ElasticAddress, instance: Instance,
              allow_reassociation: bool) -> str:
    """Point `address` at `instance`; answers the association id."""
    if instance.state not in ASSOCIABLE:
        raise EC2Error("InvalidInstanceID",
                       f"The instance '{instance.id}' is {instance.state}; an address can be "
                       "associated only with a pending or running instance.")
    current = _instance_of(db, address)
    if current is not None and current.id == instance.id:
        assert address.association_id is not None
        return address.association_id  # asking again changes nothing
    if current is not None:
        if not allow_reassociation:
            raise EC2Error("Resource.AlreadyAssociated",
                           f"The address '{address.public_ip}' is already associated with "
                           f"{current.id}; set AllowReassociation to move it.")
        _detach(db, config, address, current)
    other = db.scalar(select(ElasticAddress).where(ElasticAddress.instance_id == instance.id,
                                                   ElasticAddress.public_ip != address.public_ip))
    if other is not None:  # one elastic address per instance: the old one stays allocated
        other.instance_id = other.association_id = None
    _release_dynamic(instance)
    instance.public_ip = address.public_ip
    address.instance_id = instance.id
    address.association_id = new_id("eipassoc", 17)
    db.flush()
    return address.association_id


def _detach(db: Session, config: CloudConfig, address: ElasticAddress, instance: Instance) -> None:
    address.instance_id = address.association_id = None
    db.flush()
    instance.public_ip = None
    [instance.public_ip] = dynamic_for(db, config, 1)


def disassociate(db: Session, config: CloudConfig, address: ElasticAddress) -> Instance | None:
    """Unpoint `address`; its instance gets a new dynamic address. None when it pointed nowhere."""
    instance = _instance_of(db, address)
    if instance is None:
        address.instance_id = address.association_id = None
        return None
    _detach(db, config, address, instance)
    return instance


def release(db: Session, address: ElasticAddress) -> None:
    if _instance_of(db, address) is not None:
        raise EC2Error("InvalidIPAddress.InUse",
                       f"The address '{address.public_ip}' is associated with {address.instance_id}: "
                       "disassociate it first.")
    db.delete(address)
    db.flush()


def by_association(db: Session, account_id: str, association_id: str) -> ElasticAddress:
    address = db.scalar(select(ElasticAddress).where(ElasticAddress.association_id == association_id,
                                                     ElasticAddress.account_id == account_id))
    if address is None or _instance_of(db, address) is None:
        raise EC2Error("InvalidAssociationID.NotFound",
                       f"The association ID '{association_id}' does not exist")
    return address


def pool_listing(db: Session, config: CloudConfig) -> list[tuple[str, ElasticAddress | None, Instance | None]]:
    """Every address of the pool with its elastic owner and the live instance holding it:
    what Eucalyptus showed an administrator with `describe-addresses verbose`."""
    elastic = {a.public_ip: a for a in db.scalars(select(ElasticAddress))}
    holders = {i.public_ip: i for i in db.scalars(select(Instance).where(
        Instance.state.in_(LIVE), Instance.public_ip.is_not(None)))}
    return [(ip, elastic.get(ip), holders.get(ip)) for ip in pool(config)]
