"""RunInstances behind the handler: validate what the user asked for, allocate ids and
addresses, ask the zone's CC to place and start the instances, and record them `pending`.

Allocation, the CC call and the commit happen under one lock, so two concurrent launches never
share an address and a refused launch (InsufficientInstanceCapacity) leaves nothing behind."""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from clc import tagging
from clc.addressing import AddressPlan
from clc.api.registry import Context
from clc.api.security_groups import DEFAULT_GROUP, find_group
from clc.instances import server_error, transition
from clc.boot_images import resolve_for_launch
from clc.models.instances import Instance, InstanceGroup
from clc.models.resources import KeyPair, SecurityGroup
from clc.models.vmtypes import VmTypeRow
from services.errors import EC2Error
from services.messages.cluster import InstanceLaunch, RunInstances
from services.messages.node import VmType

MAX_USER_DATA = 16 * 1024
MAX_INSTANCES_PER_CALL = 1000
IMAGE_ID = re.compile(r"^(emi|ami|eki|aki|eri|ari)-[0-9a-f]{8}([0-9a-f]{9})?$")

_LAUNCH_LOCK = threading.Lock()


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
    row = ctx.db.get(VmTypeRow, name)
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


def launch(ctx: Context, request: LaunchRequest) -> list[Instance]:
    """Start between min_count and max_count instances; all of one reservation."""
    _check_counts(request)
    if not IMAGE_ID.match(request.image_id):
        raise EC2Error("InvalidAMIID.Malformed", f'Invalid id: "{request.image_id}" (expecting "emi-...")')
    earlier = _earlier(ctx, request)
    if earlier is not None:
        return earlier
    _check_user_data(request.user_data_b64)
    vm = _vm_type(ctx, request.instance_type)
    zone = _zone(ctx, request.zone)
    images = resolve_for_launch(ctx.db, ctx.account_id, request.image_id, request.kernel_id,
                                request.ramdisk_id)
    image, kernel, ramdisk = images.refs(ctx.config.service_url("walrus"))
    key = _key(ctx, request.key_name)
    groups = _groups(ctx, request.group_names, request.group_ids)
    for spec in request.tag_specifications:  # validate before anything starts
        tagging.validated_tags(spec.get("Tags"))
    if ctx.services is None:
        raise EC2Error("Unavailable", "This CLC has no cluster controller to run instances on.", 503)
    count = min(request.max_count, MAX_INSTANCES_PER_CALL)
    reservation_id = ctx.new_id("r")
    instance_ids = [ctx.new_id("i") for _ in range(count)]
    with _LAUNCH_LOCK:
        addresses = AddressPlan(ctx.config).allocate(ctx.db, ctx.account_id, groups[0].id, instance_ids)
        message = RunInstances(
            reservation_id=reservation_id, account_id=ctx.account_id, vm=vm, image=image,
            kernel=kernel, ramdisk=ramdisk, key_openssh=key.public_key if key else None,
            user_data_b64=request.user_data_b64, min_count=request.min_count,
            instances=[InstanceLaunch(instance_id=i, launch_index=n, network=addresses[i].network())
                       for n, i in enumerate(instance_ids)])
        ctx.trace("called", f"CC of {zone}: run {count} {vm.name} (at least {request.min_count})")
        result = ctx.services.run_instances(zone, message)
        placed = {p.instance_id: p for p in result.placed}
        rows: list[Instance] = []
        for n, instance_id in enumerate(i for i in instance_ids if i in placed):
            placement, net = placed[instance_id], addresses[instance_id]
            row = Instance(
                id=instance_id, reservation_id=reservation_id, account_id=ctx.account_id,
                image_id=image.image_id, kernel_id=kernel.image_id if kernel else None,
                ramdisk_id=ramdisk.image_id if ramdisk else None, instance_type=vm.name, zone=zone,
                key_name=request.key_name, launch_index=n,
                client_token=request.client_token if n == 0 else None,
                user_data_b64=request.user_data_b64, state="pending", desired_state="running",
                state_transition_reason="", node=placement.node, mac=net.mac,
                private_ip=net.private_ip, public_ip=net.public_ip, vlan=net.vlan)
            ctx.db.add(row)
            ctx.db.add_all(InstanceGroup(instance_id=instance_id, group_id=g.id, group_name=g.name)
                           for g in groups)
            if placement.report is None:  # the node refused it: it fails with the reason
                transition(row, "terminated", placement.reason or server_error("the node did not start it"))
            elif placement.report.reason is not None:
                row.state_reason_code = placement.report.reason.code
                row.state_reason_message = placement.report.reason.message
            rows.append(row)
        ctx.db.flush()
        for row in rows:
            for spec in request.tag_specifications:
                if spec.get("ResourceType") == "instance":
                    tagging.apply_tag_specifications(ctx.db, ctx.account_id, [spec], "instance", row.id)
        # Commit under the lock: the next launch must see these addresses as taken.
        ctx.db.commit()
    ctx.trace("decided", f"{len(rows)} instance(s) pending in reservation {reservation_id}",
              nodes=sorted({r.node or "" for r in rows}))
    return rows
