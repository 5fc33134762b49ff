"""Volumes end to end with boto3 against the cloud as `make up` starts it (CLC, Walrus, SC,
CC, simulated NCs): create in every accepted type, tags, idempotency by ClientToken, every
DescribeVolumes filter and paging, status and attributes, grow, delete — and every mistake
answered with EC2's code, changing nothing. On both SC backends (the module's cloud is
parametrized): sparse files and RBD images in the test Ceph cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from services.clock import utcnow
from services.db import Database
from services.messages.storage import SC_VOLUME_ROUTE, VolumeInfo
from tests.support.cloud import Cloud, running_cloud
from tests.support.volume_data import data_of, rbd_settings
from tests.support.waiting import wait_for


@pytest.fixture(scope="module", params=["file", "rbd"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    settings = rbd_settings(request.getfixturevalue("ceph")) if request.param == "rbd" else {}
    with running_cloud(tmp_path_factory.mktemp(f"ebs-cloud-{request.param}"), nodes=1,
                       SC_MAX_STORAGE=200, **settings) as c:
        yield c


def volume(ec2, volume_id: str) -> dict:  # type: ignore[no-untyped-def]
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def wait_state(ec2, volume_id: str, state: str) -> dict:  # type: ignore[no-untyped-def]
    return wait_for(lambda: (v := volume(ec2, volume_id))["State"] == state and v, 60,
                    f"{volume_id} {state}")


def wait_gone(ec2, volume_id: str) -> None:  # type: ignore[no-untyped-def]
    def gone() -> bool:
        try:
            volume(ec2, volume_id)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "InvalidVolume.NotFound"
        return False
    wait_for(gone, 60, f"{volume_id} deleted")


def code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def kept(ec2) -> set[str]:  # type: ignore[no-untyped-def]
    """The volumes not on their way out (an earlier test's deletions finish meanwhile)."""
    found = ec2.describe_volumes(Filters=[{"Name": "status", "Values": [
        "creating", "available", "in-use", "error"]}])["Volumes"]
    return {v["VolumeId"] for v in found}


def sc_volume(cloud: Cloud, volume_id: str) -> VolumeInfo | None:
    sc = cloud.internal("sc")
    try:
        return sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo)
    except Exception:  # noqa: BLE001 - 404: the SC has no such volume
        return None
    finally:
        sc.close()


def test_create_describe_grow_delete(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    made = ec2.create_volume(AvailabilityZone="zone-1", Size=2, VolumeType="gp3",
                             TagSpecifications=[{"ResourceType": "volume",
                                                 "Tags": [{"Key": "db", "Value": "orders"}]}])
    assert made["State"] == "creating" and made["Size"] == 2 and made["VolumeType"] == "gp3"
    assert made["Tags"] == [{"Key": "db", "Value": "orders"}]
    found = wait_state(ec2, made["VolumeId"], "available")
    assert found["AvailabilityZone"] == "zone-1" and found["Attachments"] == []
    info = sc_volume(cloud, made["VolumeId"])
    data = data_of(cloud.config)
    assert info is not None and info.size_gib == 2 and data.size(info.path) == 2 << 30

    status = ec2.describe_volume_status(VolumeIds=[made["VolumeId"]])["VolumeStatuses"][0]
    assert status["VolumeStatus"]["Status"] == "ok"
    assert ec2.describe_volume_attribute(VolumeId=made["VolumeId"], Attribute="autoEnableIO")[
        "AutoEnableIO"] == {"Value": False}

    grown = ec2.modify_volume(VolumeId=made["VolumeId"], Size=3)["VolumeModification"]
    assert (grown["OriginalSize"], grown["TargetSize"]) == (2, 3)
    assert volume(ec2, made["VolumeId"])["Size"] == 3
    assert data.size(info.path) == 3 << 30
    assert code(lambda: ec2.modify_volume(VolumeId=made["VolumeId"], Size=1)) == "InvalidParameterValue"
    assert volume(ec2, made["VolumeId"])["Size"] == 3

    ec2.delete_volume(VolumeId=made["VolumeId"])
    wait_gone(ec2, made["VolumeId"])
    wait_for(lambda: sc_volume(cloud, made["VolumeId"]) is None
             or sc_volume(cloud, made["VolumeId"]).state == "deleted", 30, "the SC's volume gone")  # type: ignore[union-attr]
    assert not data.exists(info.path)


def test_client_token_makes_one_volume(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    first = ec2.create_volume(AvailabilityZone="zone-1", Size=1, ClientToken="token-1")
    again = ec2.create_volume(AvailabilityZone="zone-1", Size=1, ClientToken="token-1")
    assert first["VolumeId"] == again["VolumeId"]
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1", Size=2,
                                          ClientToken="token-1")) == "IdempotentParameterMismatch"
    wait_state(ec2, first["VolumeId"], "available")
    ec2.delete_volume(VolumeId=first["VolumeId"])


def test_filters_and_paging(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    ids = []
    for size, kind in ((1, "standard"), (4, "gp2"), (4, "gp3"), (5, "standard"), (6, "gp2"),
                       (7, "gp3")):
        ids.append(ec2.create_volume(
            AvailabilityZone="zone-1", Size=size, VolumeType=kind,
            TagSpecifications=[{"ResourceType": "volume",
                                "Tags": [{"Key": "set", "Value": "paging"}]}])["VolumeId"])
    for volume_id in ids:
        wait_state(ec2, volume_id, "available")

    def matching(*filters: tuple[str, list[str]]) -> set[str]:
        found = ec2.describe_volumes(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return {v["VolumeId"] for v in found["Volumes"]}

    assert matching(("tag:set", ["paging"])) == set(ids)
    assert matching(("tag:set", ["paging"]), ("size", ["4"])) == set(ids[1:3])
    assert matching(("tag:set", ["paging"]), ("volume-type", ["gp2", "gp3"])) == {
        ids[1], ids[2], ids[4], ids[5]}
    assert matching(("volume-id", [ids[0]]), ("status", ["available"])) == {ids[0]}
    assert matching(("volume-id", [ids[0]]), ("availability-zone", ["zone-1"])) == {ids[0]}
    assert matching(("volume-id", [ids[0]]), ("snapshot-id", [""])) == {ids[0]}
    assert matching(("tag:set", ["paging"]), ("attachment.status", ["attached"])) == set()
    assert matching(("tag:set", ["paging"]), ("attachment.instance-id", ["i-*"])) == set()
    created = volume(ec2, ids[0])["CreateTime"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert ids[0] in matching(("create-time", [created]))
    assert code(lambda: matching(("no-such-filter", ["x"]))) == "InvalidParameterValue"

    seen: list[str] = []
    kwargs: dict = {"Filters": [{"Name": "tag:set", "Values": ["paging"]}], "MaxResults": 5}
    while True:
        page = ec2.describe_volumes(**kwargs)
        seen += [v["VolumeId"] for v in page["Volumes"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == ids
    for volume_id in ids:
        ec2.delete_volume(VolumeId=volume_id)


def test_mistakes_answer_ec2s_codes_and_change_nothing(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    before = kept(ec2)
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1", Size=0)) == "InvalidParameterValue"
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1", Size=2000,
                                          VolumeType="standard")) == "InvalidParameterValue"
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1", Size=1,
                                          VolumeType="io9")) == "InvalidParameterValue"
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-9", Size=1)) == "InvalidParameterValue"
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1")) == "MissingParameter"
    # Beyond the zone's room (SC_MAX_STORAGE=200): the SC refuses and nothing is recorded.
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1", Size=500,
                                          VolumeType="gp2")) == "VolumeLimitExceeded"
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1",
                                          SnapshotId="snap-12345678")) == "InvalidSnapshot.NotFound"
    assert code(lambda: ec2.delete_volume(VolumeId="vol-12345678")) == "InvalidVolume.NotFound"
    assert code(lambda: ec2.delete_volume(VolumeId="vol-nothex!")) == "InvalidVolumeID.Malformed"
    assert code(lambda: ec2.describe_volumes(VolumeIds=["vol-12345678"])) == "InvalidVolume.NotFound"
    assert code(lambda: ec2.modify_volume(VolumeId="vol-12345678", Size=5)) == "InvalidVolume.NotFound"
    assert kept(ec2) == before

    # Another account's volume is as missing as an unknown one.
    mine = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    other = cloud.ec2(cloud.new_account("ebs-other"))
    assert code(lambda: other.describe_volumes(VolumeIds=[mine])) == "InvalidVolume.NotFound"
    assert code(lambda: other.delete_volume(VolumeId=mine)) == "InvalidVolume.NotFound"
    assert other.describe_volumes()["Volumes"] == []
    wait_state(ec2, mine, "available")
    ec2.delete_volume(VolumeId=mine)


def test_a_snapshot_in_progress_is_incorrect_state(cloud: Cloud) -> None:
    """While a snapshot uploads it can be neither restored nor deleted. The upload's length
    is not the test's to hold, so the CLC's record of an upload in progress is written as the
    CLC writes it when CreateSnapshot answers; the SC does not know it, which the settle pass
    forgives for UNKNOWN_GRACE and then reports as lost."""
    from clc.models.volumes import Snapshot
    from clc.snapshots import UNKNOWN_GRACE

    ec2 = cloud.ec2()
    db = Database(cloud.config.database_url("clc"))
    try:
        with db.session() as session:
            for snapshot_id, started in (("snap-0badc0de", utcnow()),
                                         ("snap-01dc0de5", utcnow() - 2 * UNKNOWN_GRACE)):
                session.add(Snapshot(id=snapshot_id, account_id=cloud.admin.account_id,
                                     volume_id="vol-0badc0de", volume_size_gib=1,
                                     data_id=snapshot_id, zone="zone-1", state="pending",
                                     progress=40, started_at=started))
    finally:
        db.engine.dispose()
    # The old one is lost: the settle pass gives it up with the reason.
    lost = wait_for(lambda: (s := ec2.describe_snapshots(SnapshotIds=["snap-01dc0de5"])[
        "Snapshots"][0])["State"] == "error" and s, 30, "the lost snapshot in error")
    assert "lost the snapshot" in lost["StateMessage"]
    shown = ec2.describe_snapshots(SnapshotIds=["snap-0badc0de"])["Snapshots"][0]
    assert (shown["State"], shown["Progress"]) == ("pending", "40%")
    before = kept(ec2)
    assert code(lambda: ec2.create_volume(AvailabilityZone="zone-1",
                                          SnapshotId="snap-0badc0de")) == "IncorrectState"
    assert code(lambda: ec2.delete_snapshot(SnapshotId="snap-0badc0de")) == "IncorrectState"
    assert kept(ec2) == before
    assert ec2.describe_snapshots(SnapshotIds=["snap-0badc0de"])["Snapshots"][0]["State"] == "pending"
    ec2.delete_snapshot(SnapshotId="snap-01dc0de5")
