"""Instances: RunInstances, DescribeInstances, DescribeInstanceStatus, TerminateInstances,
RebootInstances, Stop/StartInstances, GetConsoleOutput, Describe/ModifyInstanceAttribute."""

from __future__ import annotations

import base64
import logging
from typing import Any, Literal

from clc import launch_start, tagging, vm_types
from clc.api.query import apply_filters, exact_values, paged
from clc.api.registry import Context, action
from clc.instance_view import Extras, filters, instance_dict, reservations, row_filters, state_of, status_dict
from clc.instances import (ebs_backed, exists, not_found, owned, request_stop, request_termination,
                           set_groups)
from clc.launch import LaunchRequest, launch
from clc.models.instances import Instance
from clc.security_groups import find_group
from clc.zones_client import ZoneError
from services.clock import utcnow
from services.errors import EC2Error

LOG = logging.getLogger(__name__)

tagging.register_resource("i", "instance", exists, lambda rid: not_found([rid]))


@action("RunInstances")
def run_instances(ctx: Context, ImageId: str, MinCount: int, MaxCount: int,
                  InstanceType: str = "m1.small", KeyName: str | None = None,
                  SecurityGroups: list[str] | None = None, SecurityGroupIds: list[str] | None = None,
                  UserData: str | None = None, Placement: dict[str, Any] | None = None,
                  KernelId: str | None = None, RamdiskId: str | None = None,
                  ClientToken: str | None = None,
                  TagSpecifications: list[dict[str, Any]] | None = None,
                  BlockDeviceMappings: list[dict[str, Any]] | None = None) -> dict:
    launched = launch(ctx, LaunchRequest(
        image_id=ImageId, min_count=MinCount, max_count=MaxCount, instance_type=InstanceType,
        key_name=KeyName, group_names=list(SecurityGroups or []),
        group_ids=list(SecurityGroupIds or []), user_data_b64=UserData or "",
        zone=(Placement or {}).get("AvailabilityZone"), kernel_id=KernelId, ramdisk_id=RamdiskId,
        client_token=ClientToken, tag_specifications=list(TagSpecifications or []),
        block_device_mappings=list(BlockDeviceMappings or [])))
    rows = launched.instances
    if launched.groups is None:
        extras = Extras.load(ctx.db, ctx.account_id, rows)
    else:  # made by this call: what the answer shows is known without asking the database
        group_list = [(g.id, g.name) for g in launched.groups]
        extras = Extras(groups={r.id: group_list for r in rows},
                        tags={r.id: launched.tags or {} for r in rows},
                        tokens={rows[0].reservation_id: ClientToken or ""})
    return {"ReservationId": rows[0].reservation_id, "OwnerId": ctx.account_id,
            "Groups": extras.groups_of(rows[0]), "Instances": [instance_dict(r, extras) for r in rows]}


@action("DescribeInstances")
def describe_instances(ctx: Context, InstanceIds: list[str] | None = None,
                       Filters: list[dict[str, Any]] | None = None,
                       MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    if InstanceIds and MaxResults is not None:
        raise EC2Error("InvalidParameterCombination",
                       "The parameter instancesSet cannot be used with the parameter maxResults")
    rows = owned(ctx.db, ctx.account_id, InstanceIds or None, plain=True,
                 states=None if InstanceIds else exact_values(Filters, "instance-state-name"))
    # The filters a row answers alone go first, so that groups, tags and volumes are loaded
    # for the instances that can still match, not for the hour's terminated ones.
    rows = apply_filters(rows, row_filters(Filters), filters(Extras.none()))
    extras = Extras.load(ctx.db, ctx.account_id, rows)
    rows = apply_filters(rows, Filters, filters(extras), tags_of=extras.tags_of)
    return paged("Reservations", rows, MaxResults, NextToken,
                 lambda page: reservations(page, extras))


@action("DescribeInstanceStatus")
def describe_instance_status(ctx: Context, InstanceIds: list[str] | None = None,
                             Filters: list[dict[str, Any]] | None = None,
                             MaxResults: int | None = None, NextToken: str | None = None,
                             IncludeAllInstances: bool = False) -> dict:
    if InstanceIds and MaxResults is not None:
        raise EC2Error("InvalidParameterCombination",
                       "The parameter instancesSet cannot be used with the parameter maxResults")
    rows = owned(ctx.db, ctx.account_id, InstanceIds or None)
    if not IncludeAllInstances:
        rows = [r for r in rows if r.state == "running"]
    statuses = apply_filters([status_dict(r) for r in rows], Filters, {
        "availability-zone": lambda s: s["AvailabilityZone"],
        "instance-state-name": lambda s: s["InstanceState"]["Name"],
        "instance-state-code": lambda s: s["InstanceState"]["Code"],
        "instance-status.status": lambda s: s["InstanceStatus"]["Status"],
        "instance-status.reachability": lambda s: [d["Status"] for d in s["InstanceStatus"]["Details"]],
        "system-status.status": lambda s: s["SystemStatus"]["Status"],
        "system-status.reachability": lambda s: [d["Status"] for d in s["SystemStatus"]["Details"]],
        "event.code": lambda s: None})
    return paged("InstanceStatuses", statuses, MaxResults, NextToken, lambda page: page)


def _tell_zone(ctx: Context, what: Literal["reboot", "console"],
               instance: Instance) -> Any:
    """Pass a user's request on to the zone now; when the zone cannot do it the
    reconciliation loop carries it out later, so a refusal here is only logged."""
    if ctx.zones is None or instance.node is None:
        return None
    call = ctx.zones.reboot if what == "reboot" else ctx.zones.console
    try:
        return call(instance.zone, instance.id)
    except ZoneError as exc:
        LOG.info("%s %s: left to the reconciliation loop (%s)", what, instance.id, exc)
        return None


@action("TerminateInstances")
def terminate_instances(ctx: Context, InstanceIds: list[str]) -> dict:
    rows = owned(ctx.db, ctx.account_id, InstanceIds)
    changes = []
    for row in rows:
        before = state_of(row)
        request_termination(row)
        if row.state == "shutting-down" and ctx.launches is not None:
            # Off the request, on the zone's queue; the reconcile round repeats it if need be.
            ctx.launches.terminate_on_zone(row.zone, row.id)
        # In EC2's order: libcloud reads the first <name> of the answer as the new state.
        changes.append({"InstanceId": row.id, "CurrentState": state_of(row), "PreviousState": before})
        ctx.trace("decided", f"terminate {row.id}: {before['Name']} -> {row.state}")
    return {"TerminatingInstances": changes}


@action("RebootInstances")
def reboot_instances(ctx: Context, InstanceIds: list[str]) -> None:
    for row in owned(ctx.db, ctx.account_id, InstanceIds):
        if row.state == "running":
            _tell_zone(ctx, "reboot", row)


def _ebs_backed(ctx: Context, instance_ids: list[str], verb: str) -> list[Instance]:
    """The named instances, all EBS-backed, or EC2's refusal naming the first that is not
    (nothing changes then)."""
    rows = owned(ctx.db, ctx.account_id, instance_ids)
    for row in rows:
        if not ebs_backed(row):
            raise EC2Error("UnsupportedOperation", f"The instance '{row.id}' does not have an 'ebs' "
                           f"root device type and cannot be {verb}.")
    return rows


@action("StopInstances")
def stop_instances(ctx: Context, InstanceIds: list[str], Force: bool = False,
                   Hibernate: bool = False) -> dict:
    rows = _ebs_backed(ctx, InstanceIds, "stopped")
    for row in rows:   # every one is checked before any is stopped
        if row.state not in ("running", "stopping", "stopped"):
            raise EC2Error("IncorrectInstanceState", f"The instance '{row.id}' is not in a state "
                           "from which it can be stopped.")
    changes = []
    for row in rows:
        before = state_of(row)
        request_stop(row)
        if row.node is not None and ctx.launches is not None and before["Name"] == "running":
            # Off the request: the zone ends the domain; its report moves the instance to stopped.
            ctx.launches.terminate_on_zone(row.zone, row.id)
        changes.append({"InstanceId": row.id, "PreviousState": before, "CurrentState": state_of(row)})
        ctx.trace("decided", f"stop {row.id}: {before['Name']} -> {row.state}")
    ctx.db.commit()
    return {"StoppingInstances": changes}


@action("StartInstances")
def start_instances(ctx: Context, InstanceIds: list[str]) -> dict:
    rows = _ebs_backed(ctx, InstanceIds, "started")
    for row in rows:
        if row.state not in ("pending", "running", "stopped"):
            raise EC2Error("IncorrectInstanceState", f"The instance '{row.id}' is not in a state "
                           "from which it can be started.")
    changes = []
    for row in rows:
        before = state_of(row)
        launch_start.start(ctx, row)
        changes.append({"InstanceId": row.id, "PreviousState": before, "CurrentState": state_of(row)})
    return {"StartingInstances": changes}


@action("GetConsoleOutput")
def get_console_output(ctx: Context, InstanceId: str, Latest: bool = False) -> dict:
    row = owned(ctx.db, ctx.account_id, [InstanceId])[0]
    console = _tell_zone(ctx, "console", row)
    text = console.output if console is not None else ""
    return {"InstanceId": row.id, "Timestamp": console.timestamp if console is not None else utcnow(),
            "Output": base64.b64encode(text.encode("utf-8", "replace")).decode()}


def _value(value: Any) -> dict[str, Any]:
    return {"Value": value}


ATTRIBUTES = ("instanceType", "kernel", "ramdisk", "userData", "disableApiTermination",
              "instanceInitiatedShutdownBehavior", "rootDeviceName", "blockDeviceMapping",
              "productCodes", "sourceDestCheck", "groupSet", "ebsOptimized", "sriovNetSupport",
              "enaSupport", "disableApiStop")


@action("DescribeInstanceAttribute")
def describe_instance_attribute(ctx: Context, InstanceId: str, Attribute: str) -> dict:
    row = owned(ctx.db, ctx.account_id, [InstanceId])[0]
    if Attribute not in ATTRIBUTES:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({Attribute}) for parameter attribute is invalid. Unknown attribute.")
    extras = Extras.load(ctx.db, ctx.account_id, [row])
    values: dict[str, tuple[str, Any]] = {
        "instanceType": ("InstanceType", _value(row.instance_type)),
        "kernel": ("KernelId", _value(row.kernel_id) if row.kernel_id else {}),
        "ramdisk": ("RamdiskId", _value(row.ramdisk_id) if row.ramdisk_id else {}),
        "userData": ("UserData", _value(row.user_data_b64) if row.user_data_b64 else {}),
        "disableApiTermination": ("DisableApiTermination", _value(False)),
        "disableApiStop": ("DisableApiStop", _value(False)),
        "instanceInitiatedShutdownBehavior": ("InstanceInitiatedShutdownBehavior", _value("terminate")),
        "rootDeviceName": ("RootDeviceName", _value(row.root_device_name)),
        "blockDeviceMapping": ("BlockDeviceMappings", extras.block_devices(row.id)),
        "productCodes": ("ProductCodes", []),
        "sourceDestCheck": ("SourceDestCheck", _value(True)),
        "groupSet": ("Groups", extras.groups_of(row)),
        "ebsOptimized": ("EbsOptimized", _value(False)),
        "sriovNetSupport": ("SriovNetSupport", {}),
        "enaSupport": ("EnaSupport", _value(False)),
    }
    member, value = values[Attribute]
    return {"InstanceId": row.id, member: value}


@action("ModifyInstanceAttribute")
def modify_instance_attribute(ctx: Context, InstanceId: str, Attribute: str | None = None,
                              Value: str | None = None, Groups: list[str] | None = None,
                              InstanceType: dict[str, Any] | None = None,
                              UserData: dict[str, Any] | None = None,
                              Kernel: dict[str, Any] | None = None,
                              Ramdisk: dict[str, Any] | None = None) -> None:
    row = owned(ctx.db, ctx.account_id, [InstanceId])[0]
    needs_stopped = {"instanceType": InstanceType, "userData": UserData, "kernel": Kernel,
                     "ramdisk": Ramdisk}
    if Attribute in needs_stopped or any(v is not None for v in needs_stopped.values()):
        # EC2 changes these only while the instance is stopped (an instance-store instance
        # never is).
        if row.state != "stopped":
            raise EC2Error("IncorrectInstanceState",
                           f"The instance '{row.id}' is not in the 'stopped' state.")
        if InstanceType is not None or Attribute == "instanceType":
            name = InstanceType.get("Value") if InstanceType is not None else Value
            if not name or vm_types.named(ctx.db, name) is None:
                raise EC2Error("InvalidParameterValue", f"Invalid value '{name}' for InstanceType.")
            ctx.trace("decided", f"{row.id}: instance type {row.instance_type} -> {name}")
            row.instance_type = name
            return None
        raise EC2Error("InvalidParameterCombination",
                       f"The attribute '{Attribute}' of instance '{row.id}' cannot be modified in eucasim.")
    if Groups is not None or Attribute == "groupSet":
        ids = Groups if Groups is not None else [v for v in (Value or "").split(",") if v]
        if not ids:
            raise EC2Error("InvalidParameterValue", "Value for parameter groupSet is invalid: empty.")
        groups = [find_group(ctx.db, ctx.account_id, group_id) for group_id in dict.fromkeys(ids)]
        set_groups(ctx.db, row, groups)
        return None
    raise EC2Error("InvalidParameterCombination",
                   f"The attribute '{Attribute}' of instance '{row.id}' cannot be modified in eucasim.")
