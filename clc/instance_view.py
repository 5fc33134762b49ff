"""Instances rendered as EC2's output shapes (Instance, Reservation, InstanceStatus) and the
DescribeInstances filter table. Pure functions of rows already loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from clc import tagging
from clc.instances import STATE_CODES, aware
from clc.models.instances import Instance, InstanceGroup
from clc.models.volumes import Volume
from clc.volumes import attached_to

DOMAIN = "eucalyptus"
_CHUNK = 500  # ids per IN (...): SQLite's parameter limit is far above, but keep queries small
ROOT_DEVICE = "/dev/sda1"
UTC = timezone.utc


def private_ip(instance: Instance) -> str | None:
    """An instance's private address; a terminated one has none (EC2 drops it at
    termination, and the next launch may be given it)."""
    return None if instance.state == "terminated" else instance.private_ip


def public_ip(instance: Instance) -> str | None:
    return None if instance.state == "terminated" else instance.public_ip


def private_dns(instance: Instance) -> str:
    address = private_ip(instance)
    return f"euca-{address.replace('.', '-')}.{DOMAIN}.internal" if address else ""


def public_dns(instance: Instance) -> str:
    address = public_ip(instance)
    return f"euca-{address.replace('.', '-')}.{DOMAIN}.compute" if address else ""


# Built once (making and keying a select costs more than running it on a small answer).
_GROUPS = (select(InstanceGroup.instance_id, InstanceGroup.group_id, InstanceGroup.group_name)
           .where(InstanceGroup.instance_id.in_(bindparam("ids", expanding=True)))
           .order_by(InstanceGroup.id))
_TOKENS = (select(Instance.reservation_id, Instance.client_token)
           .where(Instance.reservation_id.in_(bindparam("ids", expanding=True)),
                  Instance.client_token.is_not(None)))


@dataclass
class Extras:
    """What one query loads for a page of instances: their groups and tags."""
    groups: dict[str, list[tuple[str, str]]]  # instance id -> [(group id, group name)]
    tags: dict[str, dict[str, str]]
    volumes: dict[str, list[Volume]] = field(default_factory=dict)  # attached EBS volumes
    # reservation id -> its ClientToken: the row holds it on the first instance only (the
    # token is unique per account), EC2 shows it on each.
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, db: Session, account_id: str, instances: Sequence[Any]) -> Extras:
        """A few queries whatever the number of instances (plain columns, no ORM objects: a
        thousand instances' groups load in a few milliseconds)."""
        ids = [i.id for i in instances]
        groups: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
        connection = db.connection()
        for start in range(0, len(ids), _CHUNK):
            for instance_id, group_id, group_name in connection.execute(
                    _GROUPS, {"ids": ids[start:start + _CHUNK]}):
                groups[instance_id].append((group_id, group_name))
        # A few instances (RunInstances, one Describe by id): only their tags; many: the
        # account's instance tags in one query rather than one per chunk.
        tags = tagging.tags_by_resource(db, account_id, "instance",
                                        ids if len(ids) <= _CHUNK else None)
        # The token is on each reservation's first instance: ask only for reservations whose
        # first instance is not among these.
        tokens = {i.reservation_id: i.client_token for i in instances
                  if i.launch_index == 0 and i.client_token}
        firsts = {i.reservation_id for i in instances if i.launch_index == 0}
        reservation_ids = sorted({i.reservation_id for i in instances} - firsts)
        for start in range(0, len(reservation_ids), _CHUNK):
            for reservation_id, token in connection.execute(
                    _TOKENS, {"ids": reservation_ids[start:start + _CHUNK]}):
                tokens[reservation_id] = token
        return cls(groups, tags, attached_to(db, ids), tokens)

    @classmethod
    def none(cls) -> Extras:
        return cls({}, {})

    def token_of(self, instance: Instance) -> str:
        return instance.client_token or self.tokens.get(instance.reservation_id, "")

    def groups_of(self, instance: Instance) -> list[dict[str, str]]:
        return [{"GroupId": gid, "GroupName": name} for gid, name in self.groups.get(instance.id, [])]

    def tags_of(self, instance: Instance) -> dict[str, str]:
        return self.tags.get(instance.id, {})

    def block_devices(self, instance_id: str) -> list[dict[str, Any]]:
        return [{"DeviceName": v.device, "Ebs": {
            "VolumeId": v.id, "Status": v.attach_state, "AttachTime": aware(v.attach_time),
            "DeleteOnTermination": v.delete_on_termination}}
            for v in self.volumes.get(instance_id, [])]


def state_of(instance: Instance) -> dict[str, Any]:
    return {"Code": STATE_CODES[instance.state], "Name": instance.state}


def instance_dict(instance: Instance, extras: Extras) -> dict[str, Any]:
    """EC2's Instance shape. Written out flat (no helper per member): DescribeInstances builds
    this a thousand times per call."""
    iid = instance.id
    state = instance.state
    private = None if state == "terminated" else instance.private_ip  # as private_ip()
    public = None if state == "terminated" else instance.public_ip
    launched = instance.launched_at
    result: dict[str, Any] = {
        "InstanceId": iid, "ImageId": instance.image_id,
        "State": {"Code": STATE_CODES[state], "Name": state},
        "PrivateDnsName": f"euca-{private.replace('.', '-')}.{DOMAIN}.internal" if private else "",
        "PublicDnsName": f"euca-{public.replace('.', '-')}.{DOMAIN}.compute" if public else "",
        "StateTransitionReason": instance.state_transition_reason or "",
        "AmiLaunchIndex": instance.launch_index, "ProductCodes": [],
        "InstanceType": instance.instance_type,
        "LaunchTime": launched if launched is None or launched.tzinfo else launched.replace(tzinfo=UTC),
        "Placement": {"AvailabilityZone": instance.zone, "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"}, "Architecture": "x86_64",
        "RootDeviceType": instance.root_device_type, "RootDeviceName": instance.root_device_name,
        "BlockDeviceMappings": extras.block_devices(iid),
        "VirtualizationType": "paravirtual", "Hypervisor": "xen",
        "SecurityGroups": [{"GroupId": gid, "GroupName": name} for gid, name in extras.groups.get(iid, ())],
        "EbsOptimized": False, "NetworkInterfaces": [], "SourceDestCheck": True,
    }
    tags = extras.tags.get(iid)
    if tags:  # EC2 leaves tagSet out when there are none
        result["Tags"] = tagging.tag_list(tags)
    result["ClientToken"] = extras.token_of(instance)
    if instance.kernel_id:
        result["KernelId"] = instance.kernel_id
    if instance.ramdisk_id:
        result["RamdiskId"] = instance.ramdisk_id
    if instance.key_name:
        result["KeyName"] = instance.key_name
    if private:
        result["PrivateIpAddress"] = private
    if public:
        result["PublicIpAddress"] = public
    if instance.state_reason_code:
        result["StateReason"] = {"Code": instance.state_reason_code,
                                 "Message": instance.state_reason_message or instance.state_reason_code}
    return result


def reservations(instances: list[Instance], extras: Extras) -> Iterator[dict[str, Any]]:
    """Group instances (in the order given) by reservation, as DescribeInstances answers. Each
    reservation's Instance dicts are made while the answer is written, one at a time: a
    thousand of them alive at once are megabytes of small objects, and such peaks leave the
    process's memory grown for good."""
    grouped: dict[str, list[Instance]] = {}
    for instance in instances:
        grouped.setdefault(instance.reservation_id, []).append(instance)
    for members in grouped.values():
        first = members[0]
        yield {"ReservationId": first.reservation_id, "OwnerId": first.account_id,
               "Groups": extras.groups_of(first),
               "Instances": (instance_dict(instance, extras) for instance in members)}


def filters(extras: Extras) -> dict[str, Callable[[Instance], Any]]:
    """DescribeInstances's filters (EC2's names) over rows."""
    def group_ids(i: Instance) -> list[str]:
        return [g for g, _ in extras.groups.get(i.id, [])]

    def group_names(i: Instance) -> list[str]:
        return [n for _, n in extras.groups.get(i.id, [])]

    return {
        "availability-zone": lambda i: i.zone, "image-id": lambda i: i.image_id,
        "instance-id": lambda i: i.id, "instance-state-name": lambda i: i.state,
        "instance-state-code": lambda i: STATE_CODES[i.state], "instance-type": lambda i: i.instance_type,
        "key-name": lambda i: i.key_name, "kernel-id": lambda i: i.kernel_id,
        "ramdisk-id": lambda i: i.ramdisk_id, "launch-index": lambda i: i.launch_index,
        "launch-time": lambda i: aware(i.launched_at).strftime("%Y-%m-%dT%H:%M:%S.000Z"),  # type: ignore[union-attr]
        "private-ip-address": private_ip, "ip-address": public_ip,
        "private-dns-name": private_dns, "dns-name": public_dns,
        "reservation-id": lambda i: i.reservation_id, "owner-id": lambda i: i.account_id,
        "group-id": group_ids, "group-name": group_names,
        "instance.group-id": group_ids, "instance.group-name": group_names,
        "state-reason-code": lambda i: i.state_reason_code,
        "state-reason-message": lambda i: i.state_reason_message,
        "reason": lambda i: i.state_transition_reason,
        "architecture": lambda i: "x86_64", "root-device-type": lambda i: i.root_device_type,
        "root-device-name": lambda i: i.root_device_name, "virtualization-type": lambda i: "paravirtual",
        "hypervisor": lambda i: "xen", "tenancy": lambda i: "default",
        "monitoring-state": lambda i: "disabled", "client-token": extras.token_of,
        "placement-group-name": lambda i: None, "product-code": lambda i: None,
        "network-interface.mac-address": lambda i: i.mac,
        "network-interface.addresses.private-ip-address": private_ip,
    }


# Filters that read what Extras loads (groups, the reservation's token); tags are read
# through tags_of. Every other filter a row answers alone.
_EXTRAS_FILTERS = frozenset({"group-id", "group-name", "instance.group-id", "instance.group-name",
                             "client-token"})
ROW_FILTERS = frozenset(filters(Extras.none())) - _EXTRAS_FILTERS


def row_filters(given: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The DescribeInstances filters a row answers alone (the rest, and any error, are left to
    the full pass)."""
    return [f for f in given or [] if f.get("Name") in ROW_FILTERS]


def status_dict(instance: Instance) -> dict[str, Any]:
    """DescribeInstanceStatus: the checks eucasim can honestly answer (the node reports it)."""
    running = instance.state == "running"
    check = {"Status": "ok" if running else "not-applicable",
             "Details": [{"Name": "reachability", "Status": "passed"}] if running else []}
    return {"InstanceId": instance.id, "AvailabilityZone": instance.zone,
            "InstanceState": state_of(instance), "InstanceStatus": check,
            "SystemStatus": dict(check), "Events": []}
