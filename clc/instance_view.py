"""Instances rendered as EC2's output shapes (Instance, Reservation, InstanceStatus) and the
DescribeInstances filter table. Pure functions of rows already loaded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc import tagging
from clc.instances import STATE_CODES, aware
from clc.models.instances import Instance, InstanceGroup

DOMAIN = "eucalyptus"
ROOT_DEVICE = "/dev/sda1"


def private_dns(instance: Instance) -> str:
    return f"euca-{instance.private_ip.replace('.', '-')}.{DOMAIN}.internal" if instance.private_ip else ""


def public_dns(instance: Instance) -> str:
    return f"euca-{instance.public_ip.replace('.', '-')}.{DOMAIN}.compute" if instance.public_ip else ""


@dataclass
class Extras:
    """What one query loads for a page of instances: their groups and tags."""
    groups: dict[str, list[tuple[str, str]]]  # instance id -> [(group id, group name)]
    tags: dict[str, dict[str, str]]

    @classmethod
    def load(cls, db: Session, account_id: str, instances: list[Instance]) -> Extras:
        ids = [i.id for i in instances]
        groups: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):  # keep SQLite's parameter count small
            chunk = ids[start:start + 500]
            for row in db.scalars(select(InstanceGroup).where(InstanceGroup.instance_id.in_(chunk))
                                  .order_by(InstanceGroup.id)):
                groups[row.instance_id].append((row.group_id, row.group_name))
        tags = tagging.tags_by_resource(db, account_id, "instance")
        return cls(groups, tags)

    def groups_of(self, instance: Instance) -> list[dict[str, str]]:
        return [{"GroupId": gid, "GroupName": name} for gid, name in self.groups.get(instance.id, [])]

    def tags_of(self, instance: Instance) -> dict[str, str]:
        return self.tags.get(instance.id, {})


def state_of(instance: Instance) -> dict[str, Any]:
    return {"Code": STATE_CODES[instance.state], "Name": instance.state}


def instance_dict(instance: Instance, extras: Extras) -> dict[str, Any]:
    result: dict[str, Any] = {
        "InstanceId": instance.id, "ImageId": instance.image_id, "State": state_of(instance),
        "PrivateDnsName": private_dns(instance), "PublicDnsName": public_dns(instance),
        "StateTransitionReason": instance.state_transition_reason or "",
        "AmiLaunchIndex": instance.launch_index, "ProductCodes": [],
        "InstanceType": instance.instance_type, "LaunchTime": aware(instance.launched_at),
        "Placement": {"AvailabilityZone": instance.zone, "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"}, "Architecture": "x86_64",
        "RootDeviceType": "instance-store", "RootDeviceName": ROOT_DEVICE,
        "BlockDeviceMappings": [], "VirtualizationType": "paravirtual", "Hypervisor": "xen",
        "SecurityGroups": extras.groups_of(instance), "EbsOptimized": False,
        "NetworkInterfaces": [], "SourceDestCheck": True,
        "Tags": tagging.tag_list(extras.tags_of(instance)),
        "ClientToken": instance.client_token or "",
    }
    optional = {"KernelId": instance.kernel_id, "RamdiskId": instance.ramdisk_id,
                "KeyName": instance.key_name, "PrivateIpAddress": instance.private_ip,
                "PublicIpAddress": instance.public_ip}
    result.update({k: v for k, v in optional.items() if v})
    if instance.state_reason_code:
        result["StateReason"] = {"Code": instance.state_reason_code,
                                 "Message": instance.state_reason_message or instance.state_reason_code}
    if not result["Tags"]:
        del result["Tags"]  # EC2 leaves tagSet out when there are none
    return result


def reservations(instances: list[Instance], extras: Extras) -> list[dict[str, Any]]:
    """Group instances (in the order given) by reservation, as DescribeInstances answers."""
    grouped: dict[str, dict[str, Any]] = {}
    for instance in instances:
        reservation = grouped.get(instance.reservation_id)
        if reservation is None:
            reservation = grouped[instance.reservation_id] = {
                "ReservationId": instance.reservation_id, "OwnerId": instance.account_id,
                "Groups": extras.groups_of(instance), "Instances": []}
        reservation["Instances"].append(instance_dict(instance, extras))
    return list(grouped.values())


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
        "private-ip-address": lambda i: i.private_ip, "ip-address": lambda i: i.public_ip,
        "private-dns-name": private_dns, "dns-name": public_dns,
        "reservation-id": lambda i: i.reservation_id, "owner-id": lambda i: i.account_id,
        "group-id": group_ids, "group-name": group_names,
        "instance.group-id": group_ids, "instance.group-name": group_names,
        "state-reason-code": lambda i: i.state_reason_code,
        "state-reason-message": lambda i: i.state_reason_message,
        "reason": lambda i: i.state_transition_reason,
        "architecture": lambda i: "x86_64", "root-device-type": lambda i: "instance-store",
        "root-device-name": lambda i: ROOT_DEVICE, "virtualization-type": lambda i: "paravirtual",
        "hypervisor": lambda i: "xen", "tenancy": lambda i: "default",
        "monitoring-state": lambda i: "disabled", "client-token": lambda i: i.client_token,
        "placement-group-name": lambda i: None, "product-code": lambda i: None,
        "network-interface.mac-address": lambda i: i.mac,
        "network-interface.addresses.private-ip-address": lambda i: i.private_ip,
    }


def status_dict(instance: Instance) -> dict[str, Any]:
    """DescribeInstanceStatus: the checks eucasim can honestly answer (the node reports it)."""
    running = instance.state == "running"
    check = {"Status": "ok" if running else "not-applicable",
             "Details": [{"Name": "reachability", "Status": "passed"}] if running else []}
    return {"InstanceId": instance.id, "AvailabilityZone": instance.zone,
            "InstanceState": state_of(instance), "InstanceStatus": check,
            "SystemStatus": dict(check), "Events": []}
