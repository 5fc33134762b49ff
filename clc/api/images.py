"""Images: RegisterImage, DescribeImages, DeregisterImage and the image attributes
(launchPermission, description, kernel, ramdisk). The rules live in clc/image_access.py (who
may see and launch) and clc/image_registration.py; Walrus is reached through `ctx.walrus`."""

from __future__ import annotations

from typing import Any

from clc import accounts, image_access, image_registration
from clc.api.query import apply_filters, paged
from clc.api.registry import Context, action
from sqlalchemy import select

from clc.api.snapshots import _snapshot_of as snapshot_of_volume
from clc.instances import ebs_backed
from clc.instances import owned as owned_instances
from clc.launch_volumes import image_mappings
from clc.models.images import Image
from clc.models.volumes import Snapshot, Volume
from clc.tagging import (apply_tag_specifications, delete_all_tags, register_resource, tag_list,
                         tags_by_resource)
from clc.walrus_client import WalrusClient
from services.clock import aware
from services.errors import EC2Error

RESOURCE_TYPE = "image"

for _prefix in image_registration.PREFIXES.values():
    register_resource(_prefix, RESOURCE_TYPE, image_access.is_visible, image_access.not_found)


def _walrus(ctx: Context) -> WalrusClient:
    if ctx.walrus is None:
        raise EC2Error("Unavailable", "This CLC has no Walrus to read image manifests from.", 503)
    return ctx.walrus


@action("RegisterImage")
def register_image(ctx: Context, Name: str, ImageLocation: str | None = None,
                   Description: str | None = None, Architecture: str | None = None,
                   KernelId: str | None = None, RamdiskId: str | None = None,
                   BlockDeviceMappings: list[dict[str, Any]] | None = None,
                   RootDeviceName: str | None = None,
                   TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    if not ImageLocation:
        if not BlockDeviceMappings:
            raise EC2Error("MissingParameter", "The request must contain the parameter "
                           "ImageLocation, or RootDeviceName and a BlockDeviceMapping to an EBS "
                           "snapshot")
        image = image_registration.register_ebs(
            ctx.db, ctx.account_id, name=Name, root_device_name=RootDeviceName,
            mappings=BlockDeviceMappings, description=Description, architecture=Architecture,
            kernel_id=KernelId, ramdisk_id=RamdiskId)
        apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications, RESOURCE_TYPE, image.id)
        ctx.trace("decided", f"registered EBS-backed {image.id}", root=RootDeviceName,
                  mappings=image.block_devices_json)
        return {"ImageId": image.id}
    image = image_registration.register(
        ctx.db, ctx.account_id, ctx.config.EUCASIM_HOME, _walrus(ctx), location=ImageLocation,
        name=Name, description=Description, architecture=Architecture, kernel_id=KernelId,
        ramdisk_id=RamdiskId)
    apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications, RESOURCE_TYPE, image.id)
    ctx.trace("decided", f"registered {image.id} from {image.location}", image_kind=image.kind,
              size=image.image_size)
    return {"ImageId": image.id}


def _owner_ids(ctx: Context, owners: list[str]) -> set[str]:
    ids: set[str] = set()
    for owner in owners:
        if owner == "self":
            ids.add(ctx.account_id)
        elif owner in ("amazon", accounts.ADMIN_ACCOUNT):
            admin = accounts.account_id_named(ctx.db, accounts.ADMIN_ACCOUNT)
            ids.update([admin] if admin else [])
        elif owner.isdigit() and len(owner) == 12:
            ids.add(owner)
        elif owner != "aws-marketplace":
            raise EC2Error("InvalidUserID.Malformed", f"Invalid user id: \"{owner}\"")
    return ids


def _root_pending(ctx: Context, rows: list[Image]) -> set[str]:
    """EBS-backed images whose root snapshot is still being taken: EC2 shows them pending."""
    wanted = {m["Ebs"]["SnapshotId"]: r.id for r in rows if r.root_device_type == "ebs"
              for m in image_mappings(r) if m.get("Ebs", {}).get("SnapshotId")}
    if not wanted:
        return set()
    pending = ctx.db.scalars(select(Snapshot.id).where(Snapshot.id.in_(list(wanted)),
                                                       Snapshot.state == "pending"))
    return {wanted[s] for s in pending}


def _image(image: Image, tags: dict[str, str], pending: bool = False) -> dict[str, Any]:
    shown_state = "pending" if pending and image.state == "available" else image.state
    result: dict[str, Any] = {
        "ImageId": image.id, "ImageLocation": image.location, "State": shown_state,
        "OwnerId": image.account_id, "Public": bool(image.is_public),
        "CreationDate": aware(image.created_at).strftime("%Y-%m-%dT%H:%M:%S.000Z"),  # type: ignore[union-attr]
        "Architecture": image.architecture, "ImageType": image.kind, "Name": image.name,
        "RootDeviceType": image.root_device_type, "RootDeviceName": image.root_device_name,
        "VirtualizationType": "paravirtual", "Hypervisor": "xen",
        "BlockDeviceMappings": image_mappings(image),
        "ProductCodes": [], "Tags": tag_list(tags)}
    for key, value in (("KernelId", image.kernel_id), ("RamdiskId", image.ramdisk_id),
                       ("Description", image.description)):
        if value:
            result[key] = value
    if image.state == "failed":
        result["StateReason"] = {"Code": "Client.ImageFailed", "Message": image.state_reason or ""}
    return result


def _missing(ids: list[str]) -> EC2Error:
    if len(ids) == 1:
        return image_access.not_found(ids[0])
    return EC2Error("InvalidAMIID.NotFound", f"The image ids '[{', '.join(ids)}]' do not exist")


@action("DescribeImages")
def describe_images(ctx: Context, ImageIds: list[str] | None = None, Owners: list[str] | None = None,
                    ExecutableUsers: list[str] | None = None,
                    Filters: list[dict[str, Any]] | None = None, MaxResults: int | None = None,
                    NextToken: str | None = None) -> dict:
    for image_id in ImageIds or []:
        image_access.check_id(image_id)
    rows = image_access.visible_images(ctx.db, ctx.account_id)
    if ImageIds:
        found = {r.id for r in rows}
        missing = [i for i in dict.fromkeys(ImageIds) if i not in found]
        if missing:
            raise _missing(missing)
        rows = [r for r in rows if r.id in ImageIds]
    if Owners:
        owners = _owner_ids(ctx, Owners)
        rows = [r for r in rows if r.account_id in owners]
    if ExecutableUsers:
        shares = image_access.shares_of(ctx.db, [r.id for r in rows])
        users = [ctx.account_id if u == "self" else u for u in ExecutableUsers if u != "all"]
        rows = [r for r in rows
                if image_access.executable_by(r, users, "all" in ExecutableUsers, shares)]
    tags = tags_by_resource(ctx.db, ctx.account_id, RESOURCE_TYPE)
    rows = apply_filters(rows, Filters, {
        "architecture": lambda r: r.architecture, "description": lambda r: r.description,
        "image-id": lambda r: r.id, "image-type": lambda r: r.kind, "is-public": lambda r: r.is_public,
        "kernel-id": lambda r: r.kernel_id, "ramdisk-id": lambda r: r.ramdisk_id,
        "manifest-location": lambda r: r.location, "name": lambda r: r.name,
        "owner-id": lambda r: r.account_id, "state": lambda r: r.state,
        "root-device-name": lambda r: r.root_device_name,
        "root-device-type": lambda r: r.root_device_type, "virtualization-type": lambda r: "paravirtual",
        "hypervisor": lambda r: "xen", "product-code": lambda r: None,
        "state-reason-message": lambda r: r.state_reason,
    }, tags_of=lambda r: tags.get(r.id, {}))
    pending = _root_pending(ctx, rows)
    return paged("Images", rows, MaxResults, NextToken,
                 lambda page: [_image(r, tags.get(r.id, {}), r.id in pending) for r in page])


@action("CreateImage")
def create_image(ctx: Context, InstanceId: str, Name: str, Description: str | None = None,
                 NoReboot: bool = False, BlockDeviceMappings: list[dict[str, Any]] | None = None,
                 TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    instance = owned_instances(ctx.db, ctx.account_id, [InstanceId])[0]
    if not ebs_backed(instance):
        raise EC2Error("InvalidParameterValue", f"The instance '{instance.id}' does not have an "
                       "'ebs' root device type; register its bundle with RegisterImage instead.")
    if instance.state not in ("running", "stopped"):
        raise EC2Error("IncorrectInstanceState", f"The instance '{instance.id}' is not in the "
                       "'running' or 'stopped' state.")
    # NoReboot or not, the snapshots are taken without a reboot: each is point in time, and
    # application-consistent where the guest's agent can freeze its file systems.
    note = Description or f"Created by CreateImage({instance.id}) for {Name}"

    def snapshot_of(volume: Volume) -> Snapshot:
        made = snapshot_of_volume(ctx, volume, note, None)
        return ctx.db.get(Snapshot, made["SnapshotId"])  # type: ignore[return-value]

    image = image_registration.image_of_instance(
        ctx.db, ctx.account_id, instance.id, Name, Description, instance.kernel_id,
        instance.ramdisk_id, instance.root_device_name, snapshot_of)
    apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications, RESOURCE_TYPE, image.id)
    ctx.trace("decided", f"{image.id} from {instance.id}", no_reboot=NoReboot,
              mappings=image.block_devices_json)
    return {"ImageId": image.id}


@action("DeregisterImage")
def deregister_image(ctx: Context, ImageId: str) -> dict:
    image_registration.deregister(ctx.db, ctx.account_id, ImageId)
    delete_all_tags(ctx.db, ctx.account_id, ImageId)
    ctx.trace("decided", f"deregistered {ImageId}")
    return {"Return": True, "DeleteSnapshotResults": []}


def _launch_permissions(ctx: Context, image: Image) -> list[dict[str, str]]:
    perms: list[dict[str, str]] = [{"Group": "all"}] if image.is_public else []
    return perms + [{"UserId": a} for a in image_access.shared_with(ctx.db, image.id)]


@action("DescribeImageAttribute")
def describe_image_attribute(ctx: Context, ImageId: str, Attribute: str) -> dict:
    image = image_access.find_image(ctx.db, ctx.account_id, ImageId, owned=Attribute == "launchPermission")
    result: dict[str, Any] = {"ImageId": image.id}
    if Attribute == "launchPermission":
        result["LaunchPermissions"] = _launch_permissions(ctx, image)
    elif Attribute == "description":
        result["Description"] = {"Value": image.description} if image.description else {}
    elif Attribute == "kernel":
        result["KernelId"] = {"Value": image.kernel_id} if image.kernel_id else {}
    elif Attribute == "ramdisk":
        result["RamdiskId"] = {"Value": image.ramdisk_id} if image.ramdisk_id else {}
    elif Attribute == "productCodes":
        result["ProductCodes"] = []
    elif Attribute == "blockDeviceMapping":
        result["BlockDeviceMappings"] = image_mappings(image)
    else:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({Attribute}) for parameter attribute is invalid. Unknown attribute.")
    return result


def _permission_changes(ctx: Context, LaunchPermission: dict[str, Any] | None,
                        OperationType: str | None, UserIds: list[str] | None,
                        UserGroups: list[str] | None) -> list[tuple[str, dict[str, str]]]:
    """[(add|remove, {"UserId"|"Group": value})], from either way EC2 accepts them."""
    changes = [(op.lower(), item) for op in ("Add", "Remove")
               for item in (LaunchPermission or {}).get(op, []) or []]
    if UserIds or UserGroups:
        if OperationType not in ("add", "remove"):
            raise EC2Error("InvalidParameterValue",
                           f"Value ({OperationType}) for parameter operationType is invalid.")
        changes += [(OperationType, {"UserId": u}) for u in UserIds or []]
        changes += [(OperationType, {"Group": g}) for g in UserGroups or []]
    for _, item in changes:
        if "Group" in item and item["Group"] != "all":
            raise EC2Error("InvalidAMIAttributeItemValue",
                           f'Invalid attribute item value "{item["Group"]}" for group item type.')
        if "UserId" in item and not accounts.account_exists(ctx.db, str(item["UserId"])):
            raise EC2Error("InvalidAMIAttributeItemValue",
                           f'Invalid attribute item value "{item["UserId"]}" for userId item type.')
        if "Group" not in item and "UserId" not in item:
            raise EC2Error("InvalidParameterValue", "A launch permission names a UserId or a Group.")
    return changes


@action("ModifyImageAttribute")
def modify_image_attribute(ctx: Context, ImageId: str, Attribute: str | None = None,
                           Description: dict[str, Any] | None = None,
                           LaunchPermission: dict[str, Any] | None = None,
                           OperationType: str | None = None, UserIds: list[str] | None = None,
                           UserGroups: list[str] | None = None, Value: str | None = None) -> None:
    image = image_access.find_image(ctx.db, ctx.account_id, ImageId, owned=True)
    if Attribute not in (None, "description", "launchPermission"):
        raise EC2Error("InvalidParameterValue",
                       f"Value ({Attribute}) for parameter attribute is invalid.")
    description = (Description or {}).get("Value")
    if description is None and Attribute == "description":
        description = Value
    changes = _permission_changes(ctx, LaunchPermission, OperationType, UserIds, UserGroups)
    if description is None and not changes:
        raise EC2Error("InvalidParameterCombination", "No attributes specified.")
    if description is not None:
        image.description = description[:255]
    for operation, item in changes:
        if "Group" in item:
            image_access.set_public(image, operation == "add")
        elif operation == "add":
            image_access.grant(ctx.db, image, str(item["UserId"]))
        else:
            image_access.revoke(ctx.db, image, str(item["UserId"]))
    ctx.trace("decided", f"modified {image.id}", public=image.is_public)
    return None


@action("ResetImageAttribute")
def reset_image_attribute(ctx: Context, ImageId: str, Attribute: str) -> None:
    image = image_access.find_image(ctx.db, ctx.account_id, ImageId, owned=True)
    if Attribute != "launchPermission":
        raise EC2Error("InvalidParameterValue",
                       f"Value ({Attribute}) for parameter attribute is invalid. "
                       "Only launchPermission can be reset.")
    image_access.unshare(ctx.db, image)
    return None
