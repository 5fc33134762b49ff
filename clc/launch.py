"""RunInstances behind the handler: validate what the user asked for, admit the launch
against the CLC's own view of the zone's capacity (clc/zone_view.py: MinCount exact, up to
MaxCount), allocate ids and addresses, record the instances `pending`, commit, and answer.
The zone's CC places them right after, off the request (clc/placement.py).

Only the address allocation and the commit that makes the addresses taken are serialised
(`clc.addresses.LOCK`, around database work only): two concurrent launches never share an address,
and no lock is held while another service is asked anything."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from clc import launch_volumes, tagging, vm_types
from clc.addresses import LOCK as ADDRESS_LOCK
from clc.addressing import AddressPlan
from clc.api.registry import Context
from clc.boot_images import resolve_for_launch
from clc.launch_volumes import BootDisk
from clc.models.instances import Instance, InstanceGroup
from clc.models.resources import KeyPair, SecurityGroup
from clc.security_groups import DEFAULT_GROUP, find_group
from services.errors import EC2Error
from services.ids import IMAGE_ID
from services.messages.cluster import InstanceLaunch, RunInstances
from services.messages.node import VmType
from services.messages.storage import CreateVolume as ScCreateVolume

MAX_USER_DATA = 16 * 1024
MAX_INSTANCES_PER_CALL = 1000


@dataclass
class LaunchRequest:
    image_id: str
    min_count: int
    max_count: int
    instance_type: str = "m1.small"
    key_name: str | None = None
    group_names: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    user_data_b64: str = ""
    zone: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    client_token: str | None = None
    tag_specifications: list[dict[str, Any]] = field(default_factory=list)
    block_device_mappings: list[dict[str, Any]] = field(default_factory=list)


def _check_counts(request: LaunchRequest) -> None:
    if request.min_count < 1:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({request.min_count}) for parameter minCount is invalid. "
                       "Expected a positive integer.")
    if request.max_count < request.min_count:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({request.max_count}) for parameter maxCount is invalid. "
                       f"Expected a value greater than or equal to minCount ({request.min_count}).")
    if request.min_count > MAX_INSTANCES_PER_CALL:
        raise EC2Error("InstanceLimitExceeded",
                       f"You have requested more instances ({request.min_count}) than your current "
                       f"instance limit of {MAX_INSTANCES_PER_CALL} allows.")


def _check_user_data(user_data_b64: str) -> None:
    try:
        raw = base64.b64decode(user_data_b64.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise EC2Error("InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.") from None
    if len(raw) > MAX_USER_DATA:
        raise EC2Error("InvalidParameterValue",
                       f"User data is limited to {MAX_USER_DATA} bytes")


def _vm_type(ctx: Context, name: str) -> VmType:
    row = vm_types.named(ctx.db, name)
    if row is None:
        raise EC2Error("InvalidParameterValue", f"Invalid value '{name}' for InstanceType.")
    return row.spec()


def _zone(ctx: Context, zone: str | None) -> str:
    zones = ctx.config.zones
    if zone is None or zone == "":
        return zones[0]
    if zone not in zones:
        raise EC2Error("InvalidParameterValue", f"Invalid availability zone: [{zone}]")
    return zone


def _key(ctx: Context, name: str | None) -> KeyPair | None:
    if name is None:
        return None
    key = ctx.db.scalar(select(KeyPair).where(KeyPair.account_id == ctx.account_id, KeyPair.name == name))
    if key is None:
        raise EC2Error("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")
    return key


def _groups(ctx: Context, names: list[str], ids: list[str]) -> list[SecurityGroup]:
    """By name and by id, in the order given, each once; the account's `default` when none."""
    found = ([find_group(ctx.db, ctx.account_id, group_name=name) for name in names]
             + [find_group(ctx.db, ctx.account_id, group_id=group_id) for group_id in ids])
    if not found:
        found = [find_group(ctx.db, ctx.account_id, group_name=DEFAULT_GROUP)]
    return list({group.id: group for group in found}.values())


def _earlier(ctx: Context, request: LaunchRequest) -> list[Instance] | None:
    """The instances of an earlier call with the same ClientToken (idempotent retry)."""
    if not request.client_token:
        return None
    first = ctx.db.scalar(select(Instance).where(Instance.account_id == ctx.account_id,
                                                 Instance.client_token == request.client_token))
    if first is None:
        return None
    if first.image_id != request.image_id or first.instance_type != request.instance_type:
        raise EC2Error("IdempotentParameterMismatch",
                       f"The client token '{request.client_token}' was used by a different request.")
    return list(ctx.db.scalars(select(Instance).where(Instance.reservation_id == first.reservation_id)
                               .order_by(Instance.launch_index)))


@dataclass
class Launched:
    instances: list[Instance]
    # What the answer shows beside the rows, when this call made them (None: an earlier call did).
    groups: list[SecurityGroup] | None = None
    tags: dict[str, str] | None = None


def _instance_tags(specs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Validate every specification before anything is recorded; those for instances apply."""
    tags: dict[str, str] = {}
    wanted = []
    for spec in specs:
        found = tagging.validated_tags(spec.get("Tags"))
        if spec.get("ResourceType") == "instance":
            wanted.append(spec)
            tags.update(found)
    return wanted, tags


def launch(ctx: Context, request: LaunchRequest) -> Launched:
    """Start between min_count and max_count instances, all of one reservation."""
    _check_counts(request)
    if not IMAGE_ID.match(request.image_id):
        raise EC2Error("InvalidAMIID.Malformed", f'Invalid id: "{request.image_id}" (expecting "emi-...")')
    earlier = _earlier(ctx, request)
    if earlier is not None:
        return Launched(earlier)
    _check_user_data(request.user_data_b64)
    vm = _vm_type(ctx, request.instance_type)
    zone = _zone(ctx, request.zone)
    images = resolve_for_launch(ctx.db, ctx.account_id, request.image_id, request.kernel_id,
                                request.ramdisk_id)
    image, kernel, ramdisk = images.refs(ctx.config.service_url("walrus"))
    boot = launch_volumes.plan(ctx.db, ctx.account_id, images.machine, request.block_device_mappings)
    if boot.root_device_type == "ebs":
        image = image.model_copy(update={"url": None})   # nothing to stream: the root is a volume
    if boot.volumes and ctx.storage is None:
        raise EC2Error("Unavailable", "This cloud has no storage controller for EBS volumes.", 503)
    key = _key(ctx, request.key_name)
    groups = _groups(ctx, request.group_names, request.group_ids)
    tag_specs, tags = _instance_tags(request.tag_specifications)
    if ctx.launches is None:
        raise EC2Error("Unavailable", "This CLC has no cluster controller to run instances on.", 503)
    reservation_id = ctx.new_id("r")
    count = ctx.launches.admit(zone, reservation_id, vm, request.min_count,
                               min(request.max_count, MAX_INSTANCES_PER_CALL))
    instance_ids = [ctx.new_id("i") for _ in range(count)]
    try:
        with ADDRESS_LOCK:
            # Every launch commits under this lock, so only here is the ClientToken check final:
            # a retry sent while the first call was still on its way (boto3 retries a timed-out
            # RunInstances with the same token) passed the check above too, and inserting its
            # rows broke the token's uniqueness with a 500.
            again = _earlier(ctx, request)
            if again is not None:
                ctx.launches.release(zone, reservation_id)
                return Launched(again)
            addresses = AddressPlan.of(ctx.config).allocate(ctx.db, ctx.account_id, groups[0].id,
                                                            instance_ids)
            rows = [Instance(
                id=instance_id, reservation_id=reservation_id, account_id=ctx.account_id,
                image_id=image.image_id, kernel_id=kernel.image_id if kernel else None,
                ramdisk_id=ramdisk.image_id if ramdisk else None, instance_type=vm.name, zone=zone,
                key_name=request.key_name, launch_index=n,
                client_token=request.client_token if n == 0 else None,
                user_data_b64=request.user_data_b64, state="pending", desired_state="running",
                root_device_type=boot.root_device_type, root_device_name=boot.root_device_name,
                state_transition_reason="", mac=addresses[instance_id].mac,
                private_ip=addresses[instance_id].private_ip,
                public_ip=addresses[instance_id].public_ip, vlan=addresses[instance_id].vlan)
                for n, instance_id in enumerate(instance_ids)]
            ctx.db.add_all(rows)
            ctx.db.add_all(InstanceGroup(instance_id=instance_id, group_id=g.id, group_name=g.name)
                           for instance_id in instance_ids for g in groups)
            disks = _boot_volumes(ctx, zone, boot, instance_ids)
            if tag_specs:
                with ctx.db.no_autoflush:
                    for instance_id in instance_ids:
                        tagging.apply_tag_specifications(ctx.db, ctx.account_id, tag_specs,
                                                         "instance", instance_id)
            # Committed under the lock: the next launch must see these addresses as taken.
            ctx.db.commit()
    except BaseException:
        ctx.launches.release(zone, reservation_id)
        raise
    ctx.trace("decided", f"{count} instance(s) pending in reservation {reservation_id}",
              zone=zone, vm=vm.name)
    ctx.launches.place(zone, RunInstances(
        reservation_id=reservation_id, account_id=ctx.account_id, vm=vm, image=image,
        kernel=kernel, ramdisk=ramdisk, key_openssh=key.public_key if key else None,
        user_data_b64=request.user_data_b64, min_count=request.min_count,
        instances=[InstanceLaunch(instance_id=i, launch_index=n, network=addresses[i].network())
                   for n, i in enumerate(instance_ids)]), ctx.request_id, disks=disks)
    return Launched(rows, groups, tags)


def _boot_volumes(ctx: Context, zone: str, boot: launch_volumes.BootPlan,
                  instance_ids: list[str]) -> list[BootDisk]:
    """Record each instance's volumes `creating` (DescribeVolumes shows them at once); the SC
    makes them after the answer."""
    disks = []
    for instance_id in instance_ids:
        for planned in boot.volumes:
            volume_id = ctx.new_id("vol")
            launch_volumes.record(ctx.db, ctx.account_id, zone, planned, volume_id)
            disks.append(BootDisk(
                instance_id=instance_id, volume_id=volume_id, device=planned.device,
                root=planned.root, delete_on_termination=planned.delete_on_termination,
                create=ScCreateVolume(volume_id=volume_id, size_gib=planned.size_gib,
                                      snapshot_id=planned.data_id)))
    if disks:
        ctx.trace("decided", f"{len(disks)} EBS volume(s) to make for the launch",
                  volumes=[f"{d.volume_id} {d.device}" for d in disks])
    return disks
