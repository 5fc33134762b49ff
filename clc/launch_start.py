"""StartInstances behind the handler: a stopped EBS-backed instance is admitted against the
zone's capacity again (with its instance type as it is now: ModifyInstanceAttribute may have
changed it while it was stopped), moves to pending, and is placed anew off the request, by
the CC's scheduler, on whichever node has room, with every volume it keeps attached (its
root among them) in its RunInstance (clc/placement.py, clc/launch_volumes.py)."""

from __future__ import annotations

from sqlalchemy import select

from clc import vm_types
from clc.addressing import Addresses
from clc.api.registry import Context
from clc.boot_images import image_ref
from clc.instances import request_start
from clc.launch_volumes import BootDisk
from clc.models.images import Image
from clc.models.instances import Instance
from clc.models.resources import KeyPair
from clc.volumes import attached_to, short_device
from services.errors import EC2Error
from services.messages.cluster import InstanceLaunch, RunInstances
from services.messages.node import ImageRef, InstanceNetwork, VmType


def _vm(ctx: Context, name: str) -> VmType:
    row = vm_types.named(ctx.db, name)
    if row is None:
        raise EC2Error("InvalidParameterValue", f"Invalid value '{name}' for InstanceType.")
    return row.spec()


def _ref(ctx: Context, image_id: str | None) -> ImageRef | None:
    """The kernel or ramdisk it was launched with (started again even if deregistered since,
    as EC2 starts an instance whose AMI is gone)."""
    image = ctx.db.get(Image, image_id) if image_id else None
    return image_ref(ctx.config.service_url("walrus"), image) if image is not None else None


def network_of(ctx: Context, row: Instance) -> InstanceNetwork:
    """The addresses it kept while stopped."""
    managed = ctx.config.VNET_MODE == "MANAGED"
    bridge = f"eucabr{row.vlan}" if managed and row.vlan is not None else ctx.config.VNET_BRIDGE
    return Addresses(row.mac or "", row.private_ip, row.public_ip, row.vlan, bridge,
                     tagged=managed).network()


def start(ctx: Context, row: Instance) -> bool:
    """Start one stopped instance; False when it was pending or running already."""
    if row.state in ("pending", "running"):
        return False
    vm = _vm(ctx, row.instance_type)
    if ctx.launches is None:
        raise EC2Error("Unavailable", "This CLC has no cluster controller to run instances on.", 503)
    kept = [v for v in attached_to(ctx.db, [row.id])[row.id] if v.attach_state == "attached"]
    hold = f"start-{row.id}-{ctx.request_id}"
    if row.state == "stopped":
        ctx.launches.admit(row.zone, hold, vm, 1, 1)   # InsufficientInstanceCapacity: nothing changed
    try:
        if not request_start(row):
            return False
        ctx.db.commit()
    except BaseException:
        ctx.launches.release(row.zone, hold)
        raise
    key = ctx.db.scalar(select(KeyPair).where(KeyPair.account_id == row.account_id,
                                              KeyPair.name == row.key_name)) if row.key_name else None
    root_key = short_device(row.root_device_name)
    disks = [BootDisk(instance_id=row.id, volume_id=v.id, device=v.device or "",
                      root=short_device(v.device or "") == root_key,
                      delete_on_termination=v.delete_on_termination, create=None) for v in kept]
    ctx.trace("decided", f"start {row.id} ({vm.name}) with {len(disks)} volume(s)",
              volumes=[d.volume_id for d in disks])
    ctx.launches.place(row.zone, RunInstances(
        reservation_id=row.reservation_id, account_id=row.account_id, vm=vm,
        image=ImageRef(image_id=row.image_id), kernel=_ref(ctx, row.kernel_id),
        ramdisk=_ref(ctx, row.ramdisk_id), key_openssh=key.public_key if key else None,
        user_data_b64=row.user_data_b64, min_count=1,
        instances=[InstanceLaunch(instance_id=row.id, launch_index=row.launch_index,
                                  network=network_of(ctx, row))]),
        ctx.request_id, disks=disks, hold=hold, restart=True)
    return True
