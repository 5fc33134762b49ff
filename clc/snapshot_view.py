"""Snapshots rendered as EC2's Snapshot shape, and DescribeSnapshots' filter table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clc import tagging
from clc.models.volumes import Snapshot
from services.clock import aware


def snapshot_dict(snapshot: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "SnapshotId": snapshot.id, "VolumeId": snapshot.volume_id, "State": snapshot.state,
        "StartTime": aware(snapshot.started_at), "Progress": f"{snapshot.progress}%",
        "OwnerId": snapshot.account_id, "Description": snapshot.description,
        "VolumeSize": snapshot.volume_size_gib, "Encrypted": False, "StorageTier": "standard",
    }
    if snapshot.state == "error" and snapshot.reason_message:
        result["StateMessage"] = snapshot.reason_message
    if tags:
        result["Tags"] = tagging.tag_list(tags)
    return result


def filters() -> dict[str, Callable[[Snapshot], Any]]:
    return {
        "description": lambda s: s.description, "encrypted": lambda s: False,
        "owner-alias": lambda s: None, "owner-id": lambda s: s.account_id,
        "progress": lambda s: f"{s.progress}%", "snapshot-id": lambda s: s.id,
        "start-time": lambda s: aware(s.started_at).strftime("%Y-%m-%dT%H:%M:%S.000Z"),  # type: ignore[union-attr]
        "status": lambda s: s.state, "volume-id": lambda s: s.volume_id,
        "volume-size": lambda s: s.volume_size_gib, "storage-tier": lambda s: "standard",
    }
