"""Volumes rendered as EC2's output shapes (Volume, VolumeAttachment, VolumeStatusItem) and
DescribeVolumes' filter table. Pure functions of rows already loaded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clc import tagging
from clc.models.volumes import Volume
from services.clock import aware

TIME = "%Y-%m-%dT%H:%M:%S.000Z"


def iops(volume: Volume) -> int | None:
    if volume.volume_type == "gp2":  # 3 IOPS per GiB, at least 100
        return min(max(100, 3 * volume.size_gib), 16000)
    if volume.volume_type == "gp3":
        return 3000
    return None


def attachment_dict(volume: Volume) -> dict[str, Any]:
    return {"VolumeId": volume.id, "InstanceId": volume.instance_id, "Device": volume.device,
            "State": volume.attach_state, "AttachTime": aware(volume.attach_time),
            "DeleteOnTermination": volume.delete_on_termination}


def volume_dict(volume: Volume, tags: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "VolumeId": volume.id, "Size": volume.size_gib, "SnapshotId": volume.snapshot_id or "",
        "AvailabilityZone": volume.zone, "State": volume.state,
        "CreateTime": aware(volume.created_at), "VolumeType": volume.volume_type,
        "Encrypted": False, "MultiAttachEnabled": False,
        "Attachments": [attachment_dict(volume)] if volume.instance_id else [],
    }
    if iops(volume) is not None:
        result["Iops"] = iops(volume)
    if volume.volume_type == "gp3":
        result["Throughput"] = 125
    if tags:
        result["Tags"] = tagging.tag_list(tags)
    return result


def filters() -> dict[str, Callable[[Volume], Any]]:
    """DescribeVolumes's filters, as EC2 documents them."""
    def when(value: Any) -> str | None:
        return aware(value).strftime(TIME) if value is not None else None  # type: ignore[union-attr]

    return {
        "attachment.attach-time": lambda v: when(v.attach_time),
        "attachment.delete-on-termination": lambda v: v.delete_on_termination if v.instance_id else None,
        "attachment.device": lambda v: v.device, "attachment.instance-id": lambda v: v.instance_id,
        "attachment.status": lambda v: v.attach_state,
        "availability-zone": lambda v: v.zone, "create-time": lambda v: when(v.created_at),
        "encrypted": lambda v: False, "multi-attach-enabled": lambda v: False,
        "fast-restored": lambda v: False, "size": lambda v: v.size_gib,
        "snapshot-id": lambda v: v.snapshot_id or "", "status": lambda v: v.state,
        "volume-id": lambda v: v.id, "volume-type": lambda v: v.volume_type,
    }


def status_dict(volume: Volume) -> dict[str, Any]:
    """DescribeVolumeStatus: io-enabled passes unless the volume is in error; the reason a last
    attachment was given up (or the SC's error) is shown as an event."""
    impaired = volume.state == "error"
    events = []
    if volume.reason_message:
        events.append({"EventType": "potential-data-inconsistency" if impaired else "attach-failed",
                       "Description": volume.reason_message, "EventId": f"evol-{volume.id[4:]}",
                       "NotBefore": aware(volume.updated_at)})
    return {"VolumeId": volume.id, "AvailabilityZone": volume.zone,
            "VolumeStatus": {"Status": "impaired" if impaired else "ok", "Details": [
                {"Name": "io-enabled", "Status": "failed" if impaired else "passed"},
                {"Name": "io-performance", "Status": "not-applicable"}]},
            "Events": events, "Actions": []}
