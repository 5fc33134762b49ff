"""The volume, attachment and snapshot state machines: the moves EC2 makes are allowed, the
rest refused, and every move records why."""

from __future__ import annotations

import pytest

from clc.models.volumes import Snapshot, Volume
from clc.snapshots import settle
from clc.snapshots import transition as snapshot_transition
from clc.states import TransitionError
from clc.volumes import check_device, move_attachment, transition
from services.clock import utcnow
from services.errors import EC2Error
from services.messages.node import StateReason
from services.messages.storage import SnapshotInfo


def fresh() -> Volume:
    return Volume(id="vol-00000001", account_id="000000000001", zone="zone-1", size_gib=1,
                  volume_type="standard", state="creating", attach_state=None)


def test_a_volume_lives_through_ec2s_states() -> None:
    volume = fresh()
    assert transition(volume, "available")
    move_attachment(volume, "attaching", instance_id="i-00000001", device="/dev/sdc")
    assert (volume.state, volume.attach_state, volume.instance_id) == ("in-use", "attaching", "i-00000001")
    move_attachment(volume, "attached")
    move_attachment(volume, "detaching")
    move_attachment(volume, "detached")
    assert (volume.state, volume.attach_state, volume.instance_id, volume.device) == (
        "available", None, None, None)
    transition(volume, "deleting")
    transition(volume, "deleted")
    with pytest.raises(TransitionError):
        transition(volume, "available")


def test_refused_moves() -> None:
    volume = fresh()
    with pytest.raises(TransitionError):
        transition(volume, "in-use")
    with pytest.raises(TransitionError):
        move_attachment(volume, "attached")
    transition(volume, "available")
    with pytest.raises(TransitionError):
        transition(volume, "deleted")


def test_a_given_up_attachment_keeps_its_reason() -> None:
    volume = fresh()
    transition(volume, "available")
    move_attachment(volume, "attaching", instance_id="i-00000001", device="/dev/sdc")
    move_attachment(volume, "detached", StateReason(code="Server.AttachFailed", message="no node"))
    assert (volume.state, volume.reason_message) == ("available", "no node")
    error = fresh()
    transition(error, "error", StateReason(code="Server.InternalError", message="bad part-00000003"))
    assert error.reason_message == "bad part-00000003"


def test_devices() -> None:
    assert check_device("/dev/sdc", []) == "/dev/sdc"
    assert check_device("xvdf", ["/dev/sdc"]) == "xvdf"
    for taken, used in (("/dev/sdc", ["sdc"]), ("sdc", ["/dev/sdc"]), ("/dev/sda1", [])):
        with pytest.raises(EC2Error) as caught:
            check_device(taken, used)
        assert caught.value.code == "InvalidParameterValue"
    with pytest.raises(EC2Error):
        check_device("/dev/nonsense", [])


def test_a_snapshot_takes_the_scs_progress() -> None:
    snapshot = Snapshot(id="snap-00000001", account_id="000000000001", volume_id="vol-00000001",
                        volume_size_gib=1, data_id="snap-00000001", zone="zone-1",
                        state="pending", progress=0)
    info = SnapshotInfo(snapshot_id="snap-00000001", volume_id="vol-00000001", volume_size_gib=1,
                        state="pending", progress=42, started_at=utcnow(), bucket="snapset-x",
                        freeze_method="reflink", freeze_ms=1.0)
    settle(snapshot, info)
    assert (snapshot.state, snapshot.progress) == ("pending", 42)
    settle(snapshot, info.model_copy(update={"state": "completed", "progress": 100}))
    assert (snapshot.state, snapshot.progress) == ("completed", 100)
    with pytest.raises(TransitionError):
        snapshot_transition(snapshot, "pending")
